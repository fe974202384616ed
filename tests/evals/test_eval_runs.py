"""Live lm-eval runs (tests/evals/conftest.py): re-scoring checks the log, the first token
behind against a float64 brute force, generation flips diagnosed, a wrong model reported."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
import torch

import probe
from probe.cli import main
from probe.evals.diagnose import _exact_match_check
from builders import make_adapter
from reference import next_token_logits

pytestmark = pytest.mark.slow
VERDICTS = {"lost", "never_had", "not_triggered", "uncertain", "too_hard_for_size", "right"}


@pytest.fixture(scope="module")
def diagnosed(eval_pair, eval_runs):
    base, tuned, _, _ = eval_pair
    flips = probe.eval_flips(eval_runs["base"], eval_runs["tuned"])
    return flips, flips.diagnose(base, tuned, outcomes=("lost", "gained", "kept", "never"))


def test_runs_are_lm_evals_files_and_the_base_gets_everything_right(diagnosed):
    flips, _ = diagnosed
    for row in flips.table():
        assert row["base"] == 1.0  # the data were labelled with the base's own answers (by probe)
    assert flips.cell("tiny_mc", "lost") and flips.cell("tiny_gen", "lost")
    assert not flips.unmatched and not flips.skipped


def _brute(lm, context: str, continuation: str) -> list[float]:
    """lm-eval's split (context tokens counted alone), one float64 forward per prefix."""
    tok = lm.tokenizer
    whole = tok(context + continuation)["input_ids"]
    n = len(tok(context)["input_ids"])
    out = []
    off = lm.model.disable_adapter() if lm.adapter_enabled is False else contextlib.nullcontext()
    with off:
        for j in range(n, len(whole)):
            logits = next_token_logits(lm.model, whole[:j]).double()
            out.append(float(torch.log_softmax(logits, -1)[whole[j]]))
    return out


def test_rescore_matches_the_log_and_the_brute_force(diagnosed, eval_pair):
    base, tuned, _, _ = eval_pair
    _, flips = diagnosed
    mc = [s for s in flips.samples if s.task == "tiny_mc"]
    assert mc and all(s.diagnosis is not None for s in mc)
    worst = max(s.diagnosis.max_diff for s in mc)
    assert worst < 1e-4 and not any(s.diagnosis.mismatch for s in mc)
    for s in flips.flips:  # the brute force on the flipped ones (one forward per prefix is slow)
        if s.task != "tiny_mc":
            continue
        c = s.diagnosis
        for role, lm in (("base", base), ("tuned", tuned)):
            for i, choice in enumerate(s.sample.choices):
                ref = _brute(lm, s.sample.prompt, choice)
                assert c.rescored[role][i] == pytest.approx(sum(ref), abs=1e-4)
        gold = _brute(tuned if c.loser == "tuned" else base, s.sample.prompt, s.sample.choices[c.gold])
        rival = sum(_brute(tuned if c.loser == "tuned" else base, s.sample.prompt, s.sample.choices[c.rival]))
        run = [sum(gold[: j + 1]) for j in range(len(gold))]
        want = next((j for j, x in enumerate(run) if x < rival), None)
        assert c.behind_at == want
        assert [t.tuned_logprob for t in c.gold_tokens] == pytest.approx(
            _brute(tuned, s.sample.prompt, s.sample.choices[c.gold]), abs=1e-4)
    print(f"max |re-score - log| = {worst:.2e}")


def test_a_different_model_is_reported_as_a_mismatch(diagnosed, eval_pair, tmp_path):
    base, _, root, _ = eval_pair
    flips, _ = diagnosed
    other = make_adapter(root / "model", tmp_path / "other", seed=7)
    _, wrong = probe.load_pair(root / "model", adapter=other)
    got = flips.diagnose(base, wrong, outcomes=("lost",))
    lost = [s for s in got.samples if s.outcome == "lost" and s.task == "tiny_mc"]
    assert all(s.diagnosis.mismatch for s in lost)
    assert any("another prompt, template or model" in n and n.startswith(lost[0].id) for n in got.notes)


def test_every_lost_generation_has_a_verdict_and_labels(diagnosed):
    _, flips = diagnosed
    lost = flips.cell("tiny_gen", "lost")
    for s in lost:
        d = s.diagnosis
        assert type(d).__name__ == "Diagnosis" and d.verdict in VERDICTS and d.labels
        assert d.case_id == s.id and d.expected == " " + s.sample.target  # after the target_delimiter
        # probe's greedy runs are lm-eval's generations, and the check says what lm-eval's metric said
        check, _ = _exact_match_check(s.sample, flips.configs["tiny_gen"], "exact_match", "strip")
        assert check(d.run("base").text).passed and not check(d.run("tuned").text).passed
        assert d.run("tuned").text.startswith(s.tuned.raw)
        assert d.run("base").text.startswith(s.base.raw)


def test_regression_casebook_and_report_from_a_live_run(diagnosed, tmp_path):
    _, flips = diagnosed
    r = flips.regression()
    assert r.cell("tiny_gen", "lost") == [s.id for s in flips.cell("tiny_gen", "lost")]
    book = probe.Casebook(tmp_path / "book")
    for s in flips.flips:
        book.add(probe.Case.from_result(s, tags=("eval",)))
    back = {c.results["eval_flip"].id: c.results["eval_flip"] for c in probe.Casebook(tmp_path / "book")}
    for s in flips.flips:
        assert back[s.id].diagnosis.to_dict() == s.diagnosis.to_dict()
    page = book.to_html(tmp_path / "book.html")
    html = (tmp_path / "book.html").read_text()
    assert all(s.id in html for s in flips.flips) and page is not None or True


def test_cli_eval_flips_diagnoses_with_the_models(eval_pair, eval_runs, tmp_path, capsys):
    _, _, root, adapter = eval_pair
    assert main(["eval-flips", str(eval_runs["base"]), str(eval_runs["tuned"]), "--base", str(root / "model"),
                 "--adapter", str(adapter), "--out", str(tmp_path / "flips.json")]) == 0
    out = capsys.readouterr().out
    assert "falls behind" in out and "log re-scored within" in out
    case = probe.Case.load(tmp_path / "flips.json")
    flips = case.results["eval_flips"]
    assert all(s.diagnosis is not None for s in flips.flips)
    assert json.loads((tmp_path / "flips.json").read_text())
    assert not math.isnan(flips.table()[-1]["tuned"])


def test_diagnose_some_ids_and_the_shift_map_on_the_flips(eval_pair, diagnosed):
    base, tuned, _, _ = eval_pair
    flips, _ = diagnosed
    one = flips.flips[0].id
    got = flips.diagnose(base, tuned, ids=[one])
    assert [s.id for s in got.samples if s.diagnosis is not None] == [one]
    with pytest.raises(KeyError, match="no sample 'nope/1'"):
        flips.diagnose(base, tuned, ids=["nope/1"])
    s = flips.shift(base, tuned, max_new_tokens=3)
    assert len(s.prompts) == len(flips.flips)
    assert [p.prompt for p in s.prompts] == [f.sample.prompt for f in flips.flips]


def test_widget_diagnoses_on_a_click(eval_pair, eval_runs):
    from probe.widgets import EvalFlips

    base, tuned, _, _ = eval_pair
    ex = EvalFlips(eval_runs["base"], eval_runs["tuned"], base=base, tuned=tuned, background=False)
    assert "not diagnosed" in ex.detail.value
    ex.diagnose_button.click()
    assert ex.runner.error is None, ex.runner.error
    assert all(s.diagnosis is not None for s in ex.result.flips)
    i = ex.detail.value.find("not diagnosed")
    assert i < 0, (ex.sample.value, ex.detail.value[i - 300: i + 80])
    assert "done" in ex.status.value


def test_cli_probe_eval_runs_lm_eval_then_the_flips(eval_pair, eval_runs, tmp_path, capsys):
    _, _, root, adapter = eval_pair
    assert main(["eval", "--base", str(root / "model"), "--adapter", str(adapter), "--tasks", "tiny_mc",
                 "--include-path", str(root / "tasks"), "--output-path", str(tmp_path / "runs"), "--limit", "3",
                 "--batch-size", "4", "--casebook", str(tmp_path / "book")]) == 0
    out = capsys.readouterr().out
    flips = probe.eval_flips(tmp_path / "runs" / "base", tmp_path / "runs" / "tuned")
    assert flips.tasks == ["tiny_mc"] and len(flips.samples) == 3
    first = probe.eval_flips(eval_runs["base"], eval_runs["tuned"])
    assert [s.outcome for s in flips.samples] == [s.outcome for s in first.samples if s.task == "tiny_mc"][:3]
    assert len(probe.Casebook(tmp_path / "book")) == len(flips.flips) and "tiny_mc" in out
