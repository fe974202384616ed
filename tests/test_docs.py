"""Docs that run: every ``>>>`` example in probe's docstrings, and the README's "Use" blocks.

The examples run on tiny models built here (probe.tiny), in a fresh temporary folder each:

* names an example may use without defining: ``probe``, ``folder`` (a tiny chat model's
  folder), ``adapter`` (a LoRA adapter folder for it), ``lm = probe.load(folder)`` and
  ``base, tuned = probe.load_pair(folder, adapter=adapter)``;
* an example that shows a result is checked against it (ELLIPSIS on); one that shows none
  only has to run (a tiny random model's numbers mean nothing to show).

The README's blocks are run the same way, with its placeholder paths swapped for the tiny
ones: ``"path/to/model"`` and ``"path/to/base"`` -> ``folder``, ``"runs/lora-3"`` ->
``adapter``, ``"cases.jsonl"`` -> a two-case file written first, and ``<id>`` -> the id of the
case the block just saved (see ``README_SUBSTITUTIONS``).
"""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import probe
from probe.models.tiny import save_tiny

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(probe.__path__, "probe."))


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and fair to a shared machine
    folder = save_tiny(tmp_path_factory.mktemp("doc-model"), "llama", "unigram", chat=True)
    adapter = tmp_path_factory.mktemp("doc-adapter")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(adapter)
    base, tuned = probe.load_pair(folder, adapter=str(adapter))
    yield {"probe": probe, "folder": str(folder), "adapter": str(adapter), "lm": probe.load(folder),
           "base": base, "tuned": tuned}
    torch.set_num_threads(threads)


class _Checker(doctest.OutputChecker):
    """An example that shows no result only has to run; one that shows a result must match."""

    def check_output(self, want, got, optionflags):
        return not want.strip() or super().check_output(want, got, optionflags)


def _run(tests, globs) -> doctest.TestResults:
    runner = doctest.DocTestRunner(checker=_Checker(), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        test.globs.update(globs)
        runner.run(test)
    return runner.summarize(verbose=False)


def _examples(name):
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__)
            if t.examples and t.name.split(".")[:len(name.split("."))] == name.split(".")]


def test_the_doctest_finder_finds_the_examples():
    found = {name: sum(len(t.examples) for t in _examples(name)) for name in MODULES}
    assert sum(found.values()) >= 60, found  # a broken finder must not pass by finding nothing
    assert found["probe.diagnosis.result"] and found["probe.cases.case"] and found["probe.widgets.explorer"]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name, names, tmp_path, monkeypatch):
    tests = _examples(name)
    if not tests:
        return  # a module without examples (the finder test above checks that they are found)
    monkeypatch.chdir(tmp_path)
    result = _run(tests, names)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"


README_SUBSTITUTIONS = {'"suite.jsonl"': '"cases.jsonl"', '"path/to/model"': "folder", '"path/to/base"': "folder", '"runs/lora-3"': "adapter",
                        '"bad-cases/cases/<id>.json"': 'f"bad-cases/cases/{case.id}.json"',
                        '"runs/sft"': repr(str(ROOT / "tests" / "train" / "fixtures" / "trl_run"))}
CASES = ('{"id": "france", "prompt": "What is the capital of France?", "expected": "Paris", '
         '"force": "The capital of France is", "tags": ["capitals"]}\n'
         '{"id": "colors", "prompt": "List three colors.", "check": "json_valid", "force": "```json\\n"}\n')


def _readme_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"^```python\n(.*?)^```$", text[start:end], flags=re.S | re.M)


def test_the_readme_use_blocks_run(names, tmp_path, monkeypatch):
    blocks = _readme_blocks("Use")
    assert len(blocks) >= 3 and "probe.diagnose(" in blocks[0] and "probe.Casebook(" in blocks[1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases.jsonl").write_text(CASES, encoding="utf-8")
    (tmp_path / "sft.jsonl").write_text(
        '{"prompt": "What is the capital of Japan?", "response": "Beijing"}\n', encoding="utf-8")
    globs = {"__name__": "readme", **names}
    for block in blocks:
        for old, new in README_SUBSTITUTIONS.items():
            block = block.replace(old, new)
        exec(compile(block, "README.md", "exec"), globs)  # noqa: S102 - our own README
    assert globs["v"].verdict in probe.core.vocab.words(probe.core.vocab.Verdict)  # samples=10: may be uncertain
    assert [type(r).__name__ for r in globs["results"]] == ["Diagnosis", "Diagnosis"]
    assert probe.Case.load(f"bad-cases/cases/{globs['case'].id}.json") == globs["case"]
    assert Path("bad-cases.html").is_file() and globs["counts"].records == 1
