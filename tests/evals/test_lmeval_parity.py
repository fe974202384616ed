"""probe reads lm-eval's multiple-choice samples as lm-eval's own code resolved them: the right
choice (``ConfigurableTask.doc_to_target`` + ``process_results``) and the pick that ``acc_norm``
counted, asked of lm-eval's task objects on the same docs (tests/evals/conftest.py ``scripted``:
lm-eval 0.4 run on a model whose log-likelihoods the docs script)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import probe
SCRIPTED_TASKS = ("num_field", "num_template")  # tests/evals/conftest.py makes them

import lm_eval  # noqa: F401  (the test extra installs it: missing, fail, never skip)


def _docs(task) -> list[dict]:
    return list(task.eval_docs)


def _lmeval_gold(task, doc) -> int | None:
    """lm-eval's gold, by its own process_results: the one choice whose one-hot win scores acc 1."""
    n = len(task.doc_to_choice(doc))
    right = [i for i in range(n)
             if task.process_results(doc, [(0.0 if j == i else -1.0, False) for j in range(n)])["acc"] == 1.0]
    assert len(right) <= 1
    return right[0] if right else None


def _lmeval_pick(task, doc, logliks, metric: str) -> int:
    """The choice lm-eval's process_results counted for ``metric``: the one that, made the gold
    (the doc's answer set to its text), scores 1."""
    choices = task.doc_to_choice(doc)
    won = [i for i, c in enumerate(choices)
           if task.process_results({**doc, "answer": c}, [(ll, False) for ll in logliks])[metric] == 1.0]
    assert len(won) == 1, (doc, won)
    return won[0]


@pytest.mark.parametrize("task", list(SCRIPTED_TASKS))
def test_the_right_choice_is_the_one_lm_eval_resolves(scripted, task):
    flips = probe.eval_flips(scripted["base"], scripted["tuned"])
    lm_task = scripted["tasks"][task]
    docs = _docs(lm_task)
    got = {s.sample.doc_id: s.sample for s in flips.samples if s.task == task}
    assert sorted(got) == list(range(len(docs)))
    for i, doc in enumerate(docs):
        want = _lmeval_gold(lm_task, doc)
        assert got[i].gold == want, (task, doc)
        if want is not None:
            assert got[i].target == lm_task.doc_to_choice(doc)[want] and not got[i].gold_note
        else:
            assert got[i].gold_note
    # the cases that part a reading from lm-eval's are there: "2" of ["4","2","0"] is the choice
    # "2" (doc_to_target a field) but index 2 (a template's digits); "a " is not "a"
    if task == "num_field":
        assert [got[i].gold for i in range(5)] == [1, 1, 2, None, 0]
    else:
        assert [got[i].gold for i in range(5)] == [2, 1, None, None, 0]


@pytest.mark.parametrize("task", list(SCRIPTED_TASKS))
def test_sample_files_alone_give_lm_evals_choice_or_say_why_not(scripted, task, tmp_path):
    """Without results_*.json the task's doc_to_target is unknown and lm-eval logged str(target):
    the logged acc / acc_norm settle what they can (every flip: one of the models was right);
    the rest is no choice, with a note (never another choice than lm-eval's)."""
    runs = {}
    for role in ("base", "tuned"):
        runs[role] = tmp_path / role
        runs[role].mkdir()
        for f in Path(scripted[role]).glob(f"samples_{task}_*.jsonl"):
            shutil.copy(f, runs[role])
    flips = probe.eval_flips(runs["base"], runs["tuned"])
    lm_task = scripted["tasks"][task]
    for s in flips.samples:
        want = _lmeval_gold(lm_task, _docs(lm_task)[s.sample.doc_id])
        assert s.sample.gold in (want, None), s.sample
        if s.sample.gold is None:
            assert s.sample.gold_note
        if s.flipped:  # one model was right: its acc 1 says which choice lm-eval's gold was
            assert s.sample.gold == want
    assert any(s.flipped for s in flips.samples)


@pytest.mark.parametrize("answer", ["2", 2, "a ", "0", 5, "7"])
def test_resolve_gold_equals_lm_evals_on_answers_of_every_type(scripted, answer):
    """probe's reading of (logged target, doc, the config lm-eval saved) against lm-eval's own
    doc_to_target + process_results on the same doc, the answer of each type a dataset holds."""
    from probe.evals.samples import resolve_gold

    results = json.loads(next(Path(scripted["base"]).glob("results_*.json")).read_text())
    for name in SCRIPTED_TASKS:
        task = scripted["tasks"][name]
        for doc in _docs(task)[:2]:
            doc = {**doc, "answer": answer}
            texts = tuple(task.doc_to_choice(doc))
            logged = str(task.doc_to_target(doc))  # as lm-eval's EvaluationTracker writes it
            got, why = resolve_gold(logged, texts, doc, results["configs"][name])
            assert got == _lmeval_gold(task, doc), (name, doc)
            assert bool(why) == (got is None)


def test_acc_norm_rival_is_the_choice_lm_eval_counted(scripted, llama_lm):
    flips = probe.eval_flips(scripted["base"], scripted["tuned"], metric="acc_norm")
    # through diagnose: doc 4's tuned model picked "bbb" by acc_norm (lm-eval divides by the
    # choice's length; by the continuation's, " a" would win; by acc, "a")
    lost = flips.sample("num_field/4")
    assert lost.outcome == "lost" and lost.tuned.response == "bbb" and lost.base.response == "cc"
    assert probe.eval_flips(scripted["base"], scripted["tuned"]).sample("num_field/4").tuned.response == "a"
    d = flips.diagnose(llama_lm, llama_lm, ids=["num_field/4"]).sample("num_field/4").diagnosis
    assert d.loser == "tuned" and d.choices[d.rival] == " bbb"
    d_acc = probe.eval_flips(scripted["base"], scripted["tuned"], metric="acc").diagnose(
        llama_lm, llama_lm, ids=["num_field/4"]).sample("num_field/4").diagnosis
    assert d_acc.choices[d_acc.rival] == " a"
    # every wrong pick of either model, against lm-eval's own process_results
    from probe.evals.diagnose import picked

    lm_task = scripted["tasks"]["num_field"]
    docs = _docs(lm_task)
    checked = 0
    for f in flips.samples:
        if f.task != "num_field" or f.sample.gold is None:
            continue
        for role, answer in (("base", f.base), ("tuned", f.tuned)):
            want = _lmeval_pick(lm_task, docs[f.sample.doc_id], answer.logliks, "acc_norm")
            got = picked(f.sample.texts, answer.logliks, "acc_norm", f.sample.gold)
            if want != f.sample.gold:  # a model wrong by acc_norm: the rival is what lm-eval counted
                assert got == want
                checked += 1
    assert checked >= 3


def test_a_rolling_task_without_results_is_skipped_by_name(scripted, tmp_path):
    runs = {}
    for role in ("base", "tuned"):
        runs[role] = tmp_path / role
        runs[role].mkdir()
        for f in Path(scripted[role]).glob("samples_*.jsonl"):
            shutil.copy(f, runs[role])
    for base, tuned in ((runs["base"], runs["tuned"]), (scripted["base"], scripted["tuned"])):
        flips = probe.eval_flips(base, tuned)
        assert sorted(flips.tasks) == sorted(SCRIPTED_TASKS)
        assert [s for s in flips.skipped if s.startswith("ppl:")] == [
            "ppl: a loglikelihood_rolling task (perplexity) has no right or wrong answer per sample"]


def test_choices_that_differ_only_by_whitespace_stay_apart(scripted, llama_lm):
    flips = probe.eval_flips(scripted["base"], scripted["tuned"])
    f = flips.sample("num_field/1")  # choices "a" and "a ", the answer "a "
    assert f.outcome == "lost" and f.sample.gold == 1 and f.sample.target == "a "
    d = flips.diagnose(llama_lm, llama_lm, ids=[f.id]).sample(f.id).diagnosis
    assert (d.gold, d.rival) == (1, 0)
    assert "(right: ' a ')" in str(d) and "behind ' a' " in str(d)
    # a sample whose right choice is not known says why, in its note
    never = flips.sample("num_field/3")
    assert never.sample.gold is None and "'7' is none of the choices" in never.sample.gold_note
    got = flips.diagnose(llama_lm, llama_lm, outcomes=("never",), ids=[never.id]).sample(never.id)
    assert got.diagnosis is None and "none of the choices" in got.note
