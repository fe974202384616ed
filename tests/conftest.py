"""Tiny models built from configs, saved to a temp folder, loaded back through probe.load.

Fixtures are built once per session and never mutated.
"""

import os

import pytest
import torch

import probe
from probe.models.tiny import save_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # unit tests never touch the network
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# (architecture, tokenizer family): one GPT-2-style + byte-level BPE, one Llama-style +
# SentencePiece-style Metaspace/Unigram.
FAMILIES = [("gpt2", "bpe"), ("llama", "unigram")]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    dirs = {}
    for arch, tok in FAMILIES:
        for chat in (False, True):
            key = (arch, tok, chat)
            dirs[key] = save_tiny(tmp_path_factory.mktemp(f"{arch}-{tok}-{chat}"), arch, tok, chat=chat)
    return dirs


@pytest.fixture(scope="session", params=FAMILIES, ids=lambda f: f"{f[0]}-{f[1]}")
def raw_lm(request, tiny_dirs):
    arch, tok = request.param
    return probe.load(tiny_dirs[(arch, tok, False)])


@pytest.fixture(scope="session", params=FAMILIES, ids=lambda f: f"{f[0]}-{f[1]}-chat")
def chat_lm(request, tiny_dirs):
    arch, tok = request.param
    return probe.load(tiny_dirs[(arch, tok, True)])


@pytest.fixture(scope="session")
def gpt2_lm(tiny_dirs):
    return probe.load(tiny_dirs[("gpt2", "bpe", False)])


@pytest.fixture(scope="session")
def llama_lm(tiny_dirs):
    return probe.load(tiny_dirs[("llama", "unigram", False)])


# Every tiny family in both formats: (architecture, tokenizer, chat).
ALL_LMS = [(arch, tok, chat) for arch, tok in FAMILIES for chat in (False, True)]


@pytest.fixture(scope="session", params=ALL_LMS, ids=lambda k: f"{k[0]}-{k[1]}-{'chat' if k[2] else 'raw'}")
def lm(request, tiny_dirs):
    return probe.load(tiny_dirs[request.param])


@pytest.fixture(autouse=True, scope="session")
def every_saved_case_matches_the_shipped_schema():
    """Every case file the suite writes is checked against probe/cases/case.schema.json."""
    import json

    import jsonschema

    from probe.cases.case import Case
    from probe.cases.schema import SCHEMA_PATH

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    to_json = Case.to_json

    def checked(self):
        text = to_json(self)
        validator.validate(json.loads(text))
        return text

    Case.to_json = checked
    yield
    Case.to_json = to_json


@pytest.fixture(scope="session")
def demo_pair_once():
    """The demo pair (SmolLM2-135M-Instruct + both demo LoRA adapters), loaded once per run.

    On a cold $PROBE_CACHE this is where each adapter is trained, once, in the test process:
    every later test, notebook kernel and JupyterLab kernel finds it cached (a kernel that had
    to train would run into its cell timeout on a loaded machine).
    """
    from probe.demo.pair import load_demo_pair

    return load_demo_pair()


@pytest.fixture
def demo_pair(demo_pair_once):
    """The shared demo pair with ``json-only`` active (as loaded), whatever a test switched to."""
    _, tuned = demo_pair_once
    tuned.use_adapter("json-only")
    yield demo_pair_once
    tuned.use_adapter("json-only")
