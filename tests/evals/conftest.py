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


# -- lm-eval runs of a scripted model ------------------------------------------------------
# lm-eval's own code (task config, gold resolution, metrics, sample logs) run on a model whose
# log-likelihoods are written in the docs: each doc says what base and tuned give each choice,
# so the cases that part probe from lm-eval (a numeric-string answer, choices that differ only
# by whitespace, acc_norm's length) are made on purpose, in seconds.

SCRIPTED_DOCS = [
    # the answer "2" is the choice "2" (index 1), not index 2
    {"question": "Q0: 2 + 0 =", "choices": ["4", "2", "0"], "answer": "2", "base": [-3, -1, -2], "tuned": [-3, -2, -1]},
    # choices that differ only by whitespace: "a " is the second
    {"question": "Q1: pick", "choices": ["a", "a "], "answer": "a ", "base": [-2, -1], "tuned": [-1, -2]},
    # "5" is a choice (index 2), and no index at all
    {"question": "Q2: odd", "choices": ["1", "3", "5"], "answer": "5", "base": [-3, -2, -1], "tuned": [-1, -2, -3]},
    # an answer that is no choice: lm-eval's gold is -100 (acc 0 both times)
    {"question": "Q3: none", "choices": ["4", "2", "0"], "answer": "7", "base": [-1, -2, -3], "tuned": [-1, -2, -3]},
    # acc_norm: divided by the choice's length (lm-eval) the tuned model picks "bbb"; divided by
    # the continuation's (" " + choice) it would pick "a"
    {"question": "Q4: norm", "choices": ["cc", "a", "bbb"], "answer": "cc", "base": [-1, -2, -5], "tuned": [-10, -2, -5]},
]

SCRIPTED_TASKS = {
    # doc_to_target a field: lm-eval logs the answer as the string it is, choices.index(answer)
    "num_field": "doc_to_target: answer\n",
    # doc_to_target a template: a digit string becomes an index (ast.literal_eval), else a string
    "num_template": 'doc_to_target: "{{answer}}"\n',
}


class ScriptedLM:
    """An lm-eval LM (made a subclass at run time) whose answers are looked up in the docs."""

    def __init__(self, role: str, docs: list[dict]):
        self.table = {(d["question"], " " + c): float(ll) for d in docs for c, ll in zip(d["choices"], d[role])}

    def loglikelihood(self, requests):
        return [(self.table[r.args], False) for r in requests]

    def loglikelihood_rolling(self, requests):
        return [-float(len(r.args[0])) for r in requests]

    def generate_until(self, requests):
        return ["" for _ in requests]


def scripted_run(out: Path, role: str, tasks: list[str], folder: Path) -> Path:
    """lm-eval run as ``probe eval`` writes it (probe.evals.run.run_one) with the scripted model."""
    import lm_eval
    from lm_eval.api.model import LM
    from lm_eval.loggers import EvaluationTracker

    from probe.evals.run import task_manager

    model = type("Scripted", (ScriptedLM, LM), {})(role, SCRIPTED_DOCS)
    LM.__init__(model)
    tracker = EvaluationTracker(output_path=str(out))
    res = lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=task_manager(tasks, folder),
                                  log_samples=True, evaluation_tracker=tracker, verbosity="ERROR")
    samples = res.pop("samples")
    tracker.general_config_tracker.model_name = role
    tracker.general_config_tracker.model_name_sanitized = "run"
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return out / "run"


@pytest.fixture(scope="session")
def scripted(tmp_path_factory):
    """{"base": run folder, "tuned": run folder, "tasks": {name: lm-eval's task object}}."""
    from probe.evals.run import task_manager

    root = tmp_path_factory.mktemp("scripted")
    data = root / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in SCRIPTED_DOCS))
    head = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n")
    for name, target in SCRIPTED_TASKS.items():
        (root / f"{name}.yaml").write_text(
            f"task: {name}\n{head}output_type: multiple_choice\ndoc_to_text: \"{{{{question}}}}\"\n"
            f"doc_to_choice: \"{{{{choices}}}}\"\n{target}target_delimiter: \" \"\nmetric_list:\n"
            "  - metric: acc\n  - metric: acc_norm\nmetadata:\n  version: 1.0\n")
    (root / "ppl.yaml").write_text(f"task: ppl\n{head}output_type: loglikelihood_rolling\ndoc_to_text: \"\"\n"
                                   "doc_to_target: \"{{question}}\"\nmetric_list:\n  - metric: word_perplexity\n"
                                   "metadata:\n  version: 1.0\n")
    tasks = [*SCRIPTED_TASKS, "ppl"]
    objects = task_manager(list(SCRIPTED_TASKS), root).load(list(SCRIPTED_TASKS))["tasks"]
    return {"base": scripted_run(root / "runs" / "base", "base", tasks, root),
            "tuned": scripted_run(root / "runs" / "tuned", "tuned", tasks, root), "tasks": objects}
