"""lm-eval runs made on the spot, once per session: a tiny llama and a LoRA adapter on it,
evaluated by lm-eval (its Python API, as ``probe eval`` calls it) on the local tasks in
tests/evals/tasks/, so the files probe reads are lm-eval's real output.

The data are relabelled before the runs so that the base gets every sample right (each
multiple-choice label is the base's best choice, each generation target the base's greedy
word); whatever the adapter changes then shows as a lost sample. The base's answers come from
probe; that lm-eval agrees (base right everywhere) is asserted by the tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import probe
from probe.evals.diagnose import lmeval_pair
from probe.models.tiny import save_tiny
from builders import make_adapter

TASKS = Path(__file__).parent / "tasks"
FIXTURES = Path(__file__).parent / "fixtures"


def _relabel(base, out: Path) -> None:
    mc = [json.loads(x) for x in (TASKS / "mc.jsonl").read_text().splitlines() if x.strip()]
    pairs = [lmeval_pair(base, d["question"], " " + c)[:2] for d in mc for c in d["choices"]]
    traces = probe.score_many(base, pairs, raw=True, top_k=0, progress=False)
    i = 0
    for d in mc:
        lls = [sum(s.logprob for s in t.steps) for t in traces[i: i + len(d["choices"])]]
        i += len(d["choices"])
        d["label"] = max(range(len(lls)), key=lls.__getitem__)
    gen = [json.loads(x) for x in (TASKS / "gen.jsonl").read_text().splitlines() if x.strip()]
    for d in gen:
        text = probe.generate(base, f"Question: {d['question']}\nAnswer:", max_new_tokens=8, raw=True).text
        text = re.split(r"[\n.]", text)[0]
        words = re.findall(r"(\w+)", text)
        d["answer"] = words[0] if words else "[invalid]"
    for name, rows in (("mc.jsonl", mc), ("gen.jsonl", gen)):
        (out / "data").mkdir(exist_ok=True)
        (out / "data" / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "tasks").mkdir(exist_ok=True)
    for y in TASKS.glob("*.yaml"):
        (out / "tasks" / y.name).write_text(y.read_text().replace("DATA_DIR", str(out / "data")))


@pytest.fixture(scope="session")
def eval_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("evals")
    model = save_tiny(root / "model", "llama", "unigram", seed=3)
    adapter = make_adapter(model, root / "lora", seed=1)
    base, tuned = probe.load_pair(model, adapter=adapter)
    return base, tuned, root, adapter


@pytest.fixture(scope="session")
def eval_runs(eval_pair):
    base, tuned, root, _ = eval_pair
    _relabel(base, root)
    runs = probe.run_eval(base, tuned, ["tiny_mc", "tiny_gen"], root / "runs", include_path=root / "tasks",
                          batch_size=4)
    return runs
