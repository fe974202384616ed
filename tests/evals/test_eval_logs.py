"""Reading lm-eval sample logs: matching, outcomes, errors. On real lm-eval files (fixtures/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import probe
from probe.cli import main
from probe.evals.diagnose import _exact_match_check
from probe.evals.logs import read_run
from probe.shifts.regression import outcome_of

FIX = Path(__file__).parent / "fixtures"
BASE, TUNED = FIX / "base", FIX / "tuned"


def _lines(run: Path, task: str) -> list[dict]:
    [f] = run.glob(f"*/samples_{task}_*.jsonl")
    return [json.loads(x) for x in f.read_text().splitlines() if x.strip()]


def _copy(tmp_path, which=BASE, name="run") -> Path:
    out = tmp_path / name
    shutil.copytree(which, out)
    return next(out.iterdir())  # the model folder


def test_every_way_to_name_a_run_reads_the_same():
    folder = next(BASE.iterdir())
    results = next(folder.glob("results_*.json"))
    ways = [BASE, folder, results]
    reads = [read_run(w) for w in ways]
    for r in reads:
        assert sorted(r.samples) == ["tiny_gen", "tiny_mc"]
        assert r.samples["tiny_mc"] == _lines(BASE, "tiny_mc")
    one = read_run(next(folder.glob("samples_tiny_mc_*.jsonl")))
    assert list(one.samples) == ["tiny_mc"] and one.results == reads[0].results


def test_outcomes_follow_the_logged_metric():
    flips = probe.eval_flips(BASE, TUNED)
    for task, metric in (("tiny_mc", "acc"), ("tiny_gen", "exact_match")):
        b = {d["doc_id"]: d[metric] for d in _lines(BASE, task)}
        t = {d["doc_id"]: d[metric] for d in _lines(TUNED, task)}
        want = {f"{task}/{i}": outcome_of(b[i] == 1, t[i] == 1) for i in b}
        got = {s.id: s.outcome for s in flips.samples if s.task == task}
        assert got == want
        row = next(r for r in flips.table() if r["task"] == task)
        assert row["n"] == len(b) and row["base"] == pytest.approx(sum(b.values()) / len(b))
        assert row["tuned"] == pytest.approx(sum(t.values()) / len(t))
    assert not flips.unmatched and not flips.skipped


def test_a_flip_holds_prompt_target_responses_and_metrics():
    flips = probe.eval_flips(BASE, TUNED)
    lines = {d["doc_id"]: d for d in _lines(TUNED, "tiny_mc")}
    for s in flips.cell("tiny_mc", "lost") + flips.cell("tiny_mc", "gained"):
        line = lines[s.sample.doc_id]
        assert s.sample.prompt == line["arguments"]["gen_args_0"]["arg_0"]
        assert s.sample.target == line["doc"]["choices"][line["doc"]["label"]]
        assert s.tuned.logliks == tuple(float(r[0]) for r in line["filtered_resps"])
        assert s.tuned.response == line["doc"]["choices"][max(range(3), key=lambda i: s.tuned.logliks[i])]
        assert s.tuned.metrics["acc"] == line["acc"]
    gen = {d["doc_id"]: d for d in _lines(BASE, "tiny_gen")}
    for s in flips.samples:
        if s.task == "tiny_gen":
            assert s.base.response == gen[s.sample.doc_id]["filtered_resps"][0]
            assert s.base.raw == gen[s.sample.doc_id]["resps"][0][0]
            assert s.sample.until == ("\n", ".") and s.sample.max_gen_toks == 8


def test_the_task_check_reproduces_lm_evals_exact_match():
    flips = probe.eval_flips(BASE, TUNED)
    config = flips.configs["tiny_gen"]
    for s in (x for x in flips.samples if x.task == "tiny_gen"):
        check, why = _exact_match_check(s.sample, config, "exact_match", s.sample.filter)
        assert why == ""
        for a in (s.base, s.tuned):
            assert check(a.raw).passed == (a.metrics["exact_match"] == 1.0)
    # and on made-up answers, against the rule lm-eval states (first word, case and punctuation ignored)
    s = next(x for x in flips.samples if x.task == "tiny_gen")
    check, _ = _exact_match_check(s.sample, config, "exact_match", s.sample.filter)
    target = s.sample.target
    assert check(f" {target.upper()} and more").passed
    assert not check(f" x{target}").passed
    assert not check(f"\n{target}").passed  # cut at the stop string first


def test_regression_table_and_cells_match_the_flips():
    flips = probe.eval_flips(BASE, TUNED)
    r = flips.regression()
    assert isinstance(r, probe.Regression)
    for row in flips.table():
        tag = row["task"]
        got = next(x for x in r.table() if x["tag"] == tag)
        assert all(got[o] == row[o] for o in ("lost", "gained", "kept", "never"))
        for o in ("lost", "gained"):
            assert r.cell(tag, o) == [s.id for s in flips.cell(tag, o)]


def test_round_trip_and_casebook(tmp_path):
    flips = probe.eval_flips(BASE, TUNED)
    again = probe.EvalFlips.from_dict(json.loads(json.dumps(flips.to_dict())))
    assert again.table() == flips.table() and again.samples == flips.samples
    book = probe.Casebook(tmp_path / "book")
    for s in flips.flips:
        book.add(probe.Case.from_result(s))
    assert len(book) == len(flips.flips)
    ids = sorted(c.results["eval_flip"].id for c in probe.Casebook(tmp_path / "book"))
    assert ids == sorted(s.id for s in flips.flips)


def test_a_choice_logged_at_minus_infinity_saves_as_strict_json(tmp_path):
    folder = _copy(tmp_path, TUNED)
    f = next(folder.glob("samples_tiny_mc_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows[0]["filtered_resps"][0] = ["-inf", "False"]  # what lm-eval logs for a masked choice
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flips = probe.eval_flips(BASE, folder)
    tuned = next(s for s in flips.samples if s.sample.id == f"tiny_mc/{rows[0]['doc_id']}").tuned
    assert tuned.logliks[0] == float("-inf")

    def refuse(constant):
        raise ValueError(constant)

    text = json.dumps(flips.to_dict(), allow_nan=False)
    again = probe.EvalFlips.from_dict(json.loads(text, parse_constant=refuse))
    assert again.samples == flips.samples
    rows[0]["filtered_resps"][0] = ["NaN", "False"]  # a broken model: named, not saved
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(probe.EvalLogError, match="line 1.*log-likelihood of nan"):
        probe.eval_flips(BASE, folder)


def test_choice_scores_at_minus_infinity_agree_and_save_as_strict_json():
    from types import SimpleNamespace as NS

    from probe.evals.diagnose import ChoiceScores, _choice_scores
    from probe.evals.samples import Answer, Sample

    inf = float("inf")
    step = lambda text, lp: NS(text=text, logprob=lp)  # noqa: E731
    sample = Sample("t", 0, "multiple_choice", "Q", " a", choices=(" a", " b"), gold=0)
    flip = NS(sample=sample, outcome="lost", metric="acc",
              base=Answer(" a", logliks=(-1.0, -2.0)), tuned=Answer(" b", logliks=(-inf, -0.5)))
    traces = {"base": [NS(steps=[step(" a", -1.0)]), NS(steps=[step(" b", -2.0)])],
              "tuned": [NS(steps=[step(" a", -inf)]), NS(steps=[step(" b", -0.5)])]}
    c = _choice_scores(flip, traces, 1e-4, [])
    assert c.max_diff == 0.0 and not c.mismatch  # -inf logged and re-scored agree (inf - inf is NaN)
    assert c.rival == 1 and c.behind_at == 0 and c.gold_tokens[0].tuned_logprob == -inf

    def refuse(constant):
        raise ValueError(constant)

    back = ChoiceScores.from_dict(json.loads(json.dumps(c.to_dict(), allow_nan=False), parse_constant=refuse))
    assert back == c
    traces["tuned"][0] = NS(steps=[step(" a", -3.0)])  # the log says -inf, probe says -3: a mismatch
    assert _choice_scores(flip, traces, 1e-4, []).max_diff == inf


def test_an_infinite_metric_keeps_its_sign_through_a_case_file():
    from probe.evals.flips import EvalFlip
    from probe.evals.samples import Answer, Sample

    sample = Sample("t", 0, "loglikelihood", "Q", " a")
    flip = EvalFlip(sample, "lost", "perplexity", Answer(" a", metrics={"perplexity": -1.5}),
                    Answer(" a", metrics={"perplexity": float("-inf"), "acc": float("nan")}))
    back = EvalFlip.from_dict(json.loads(json.dumps(flip.to_dict(), allow_nan=False)))
    assert back.tuned.metrics["perplexity"] == float("-inf") and back.base.metrics == {"perplexity": -1.5}
    assert back.tuned.metrics["acc"] != back.tuned.metrics["acc"]  # NaN stays NaN


def test_html_escapes_model_text(tmp_path):
    folder = _copy(tmp_path)
    f = next(folder.glob("samples_tiny_gen_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows[0]["target"] = "<script>alert(1)</script>"
    rows[0]["arguments"]["gen_args_0"]["arg_0"] = "<img src=x onerror=alert(2)>"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flips = probe.eval_flips(folder, folder)
    html = flips._repr_html_() + flips.sample("tiny_gen/0")._repr_html_() + str(flips.regression()._repr_html_())
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


# -- bad input ---------------------------------------------------------------------------

def test_a_folder_without_sample_logs_says_log_samples_is_needed(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(probe.EvalLogError, match="--log_samples"):
        probe.eval_flips(tmp_path / "empty", TUNED)
    folder = _copy(tmp_path)
    for f in folder.glob("samples_*"):
        f.unlink()
    with pytest.raises(probe.EvalLogError, match="--log_samples") as err:
        probe.eval_flips(folder, TUNED)
    assert "results_" in str(err.value)


def test_runs_with_different_limits_or_tasks(tmp_path):
    folder = _copy(tmp_path)
    results = next(folder.glob("results_*.json"))
    d = json.loads(results.read_text())
    d["config"]["limit"] = 2
    results.write_text(json.dumps(d))
    with pytest.raises(probe.EvalLogError, match="--limit"):
        probe.eval_flips(folder, TUNED)
    only_mc = _copy(tmp_path, name="mc")
    next(only_mc.glob("samples_tiny_gen_*")).unlink()
    flips = probe.eval_flips(only_mc, TUNED)
    assert flips.tasks == ["tiny_mc"]
    assert any(s.startswith("tiny_gen: only in the tuned run") for s in flips.skipped)
    only_gen = _copy(tmp_path, TUNED, name="gen")
    next(only_gen.glob("samples_tiny_mc_*")).unlink()
    with pytest.raises(probe.EvalLogError, match="share no task"):
        probe.eval_flips(only_mc, only_gen)


def test_a_sample_log_with_other_fields_names_file_line_and_field(tmp_path):
    folder = _copy(tmp_path)
    f = next(folder.glob("samples_tiny_mc_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows[1]["responses"] = rows[1].pop("filtered_resps")
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(probe.EvalLogError) as err:
        probe.eval_flips(folder, TUNED)
    msg = str(err.value)
    assert f.name in msg and "line 2" in msg and "'filtered_resps'" in msg and "0.4.13" in msg


def test_samples_that_do_not_match_are_named(tmp_path):
    folder = _copy(tmp_path)
    f = next(folder.glob("samples_tiny_mc_*.jsonl"))
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    rows[0]["prompt_hash"] = "0" * 64
    del rows[-1]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flips = probe.eval_flips(folder, TUNED)
    n = len(rows) + 1
    assert any(u.startswith("tiny_mc/0: prompt differs") for u in flips.unmatched)
    assert any(u == f"tiny_mc/{n - 1}: only in the tuned run" for u in flips.unmatched)
    assert {s.id for s in flips.samples if s.task == "tiny_mc"} == {f"tiny_mc/{i}" for i in range(1, n - 1)}


def test_a_rerun_reads_the_newest_and_says_so(tmp_path):
    folder = _copy(tmp_path)
    for f in list(folder.iterdir()):
        newer = f.name.replace("2026-12-06T02-55-46", "2027-01-01T00-00-00")
        rows = f.read_text()
        if f.name.startswith("samples_tiny_mc"):
            rows = "".join(x + "\n" for x in rows.splitlines()[:2])
        (folder / newer).write_text(rows)
    run = read_run(folder)
    assert len(run.samples["tiny_mc"]) == 2 and "newest of 2" in run.note
    assert any("newest of 2" in n for n in probe.eval_flips(folder, TUNED).notes)


def test_a_metric_that_is_not_0_1_is_a_named_skip(tmp_path):
    with pytest.raises(probe.EvalLogError, match="metric 'bleu' is missing"):
        probe.eval_flips(BASE, TUNED, metric="bleu")
    flips = probe.eval_flips(BASE, TUNED, metric={"tiny_gen": "bleu"})
    assert flips.tasks == ["tiny_mc"] and any(s.startswith("tiny_gen: metric 'bleu'") for s in flips.skipped)


def test_cli_eval_flips(tmp_path, capsys):
    assert main(["eval-flips", str(BASE), str(TUNED), "--report", str(tmp_path / "r.html"),
                 "--casebook", str(tmp_path / "book")]) == 0
    out = capsys.readouterr().out
    assert "tiny_mc" in out and "lost" in out
    page = (tmp_path / "r.html").read_text()
    flips = probe.eval_flips(BASE, TUNED)
    assert all(s.id in page for s in flips.flips)
    assert len(probe.Casebook(tmp_path / "book")) == len(flips.flips)
    (tmp_path / "none").mkdir()
    assert main(["eval-flips", str(tmp_path / "none"), str(TUNED)]) == 1
    assert "--log_samples" in capsys.readouterr().err


def test_probe_eval_without_lm_eval_names_the_extra(monkeypatch):
    import sys

    from probe.evals.run import run_eval

    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(ImportError, match=r"pip install token-probe\[eval\]"):
        run_eval(None, None, ["tiny_mc"], "unused")


def test_cli_eval_needs_the_models(capsys):
    assert main(["eval", "--tasks", "tiny_mc"]) == 1
    assert "--base" in capsys.readouterr().err


def test_runs_with_and_without_a_chat_template_say_so(tmp_path):
    folder = _copy(tmp_path, TUNED)
    results = next(folder.glob("results_*.json"))
    d = json.loads(results.read_text())
    d["chat_template"] = "{{ messages }}"
    results.write_text(json.dumps(d))
    for f in folder.glob("samples_*.jsonl"):
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        for r in rows:
            r["prompt_hash"] = "f" * 64
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(probe.EvalLogError, match="differ in chat_template") as err:
        probe.eval_flips(BASE, folder)
    assert "prompt differs" in str(err.value)


def test_a_task_logged_under_two_filters_is_a_row_per_filter(tmp_path):
    runs = []
    for which in (BASE, TUNED):
        folder = _copy(tmp_path, which, name=which.name)
        f = next(folder.glob("samples_tiny_gen_*.jsonl"))
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        other = [dict(r, filter="flexible", exact_match=1.0 - r["exact_match"]) for r in rows]
        f.write_text("".join(json.dumps(r) + "\n" for r in rows + other))
        runs.append(folder)
    flips = probe.eval_flips(*runs)
    assert sorted(flips.tasks) == ["tiny_gen:flexible", "tiny_gen:strip", "tiny_mc"]
    ids = [s.id for s in flips.samples]
    assert len(ids) == len(set(ids))
    n = len(_lines(BASE, "tiny_gen"))
    assert sum(s.task == "tiny_gen:flexible" for s in flips.samples) == n


@pytest.mark.parametrize("target, config, gold", [
    ("2", {"doc_to_target": "def f(doc):\n    return doc['a']\n"}, None),  # a function: ambiguous
    ("2", {"doc_to_target": "answer"}, None),            # a field, but the line logged no doc
    ("2", {}, None), ("1", {}, None),                     # no config: index or text, ambiguous
    ("7", {}, None),                                      # no config: no reading
])
def test_a_target_without_its_config_is_refused_when_ambiguous(target, config, gold):
    """lm-eval logs str(target): without doc_to_target (sample files alone, a function) the int
    and the string read alike; probe refuses what it cannot tell (with the config, the readings
    are lm-eval's own: tests/evals/test_lmeval_parity.py), choices ("4", "2", "0")."""
    doc = {}
    from probe.evals.samples import resolve_gold

    got, why = resolve_gold(target, ("4", "2", "0"), doc, config)
    assert got == gold and bool(why) == (gold is None)
    assert resolve_gold("1", ("0", "1", "2"), {}, {}) == (1, "")  # no config, both readings agree
