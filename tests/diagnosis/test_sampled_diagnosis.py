"""diagnose(samples=...): pass rates against a brute-force count, per-run evidence against
probe.score, verdict and label rules on rigged inputs, old case files."""

import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import probe
from builders import fake_diagnosis, fake_trace, json_roundtrip
from probe.diagnosis.result import sample_seed
from probe.diagnosis.labels import (OVERFIT_SHARE, PASS_RATE, RULES, UNDERTRAINED_GAIN, decide, labels_of,
    summary)
from probe.diagnosis.passrate import PassRate, wilson
from probe.engine.trace import TokenStep, TokenTrace
from probe.overfit.sweep import Sweep, SweepRow

PROMPT, FORCE, BASE_PROMPT = "What is the capital of France?", "The capital is", "The capital of France is"
N, SEED, T, LEN = 6, 11, 1.3, 6


def _inputs(name):
    """(prompt, generate kwargs) of each run, as diagnose builds them."""
    if name == "base":
        return BASE_PROMPT, {"raw": True}
    return PROMPT, {"force": FORCE} if name.endswith("forced") else {}


def _brute_force(lm_of, d, check):
    """Every run's samples again, one generate at a time (no shared prefill, no batch)."""
    for run in d.runs:
        prompt, kw = _inputs(run.name)
        lm = lm_of[run.model]
        texts = [probe.generate(lm, prompt, max_new_tokens=LEN, do_sample=True, temperature=T,
                                seed=sample_seed(SEED, run.name, i), **kw).text for i in range(N)]
        assert run.sample_texts == tuple(texts), run.name
        count = sum(check(t) for t in texts)
        assert run.rate == PassRate(count, N), run.name
        assert run.text == probe.generate(lm, prompt, max_new_tokens=LEN, **kw).text  # greedy too


def _check(text):
    return "e" in text


@pytest.mark.parametrize("pair", ["same", "two", "lora"])
def test_sampled_pass_rates_equal_a_one_at_a_time_brute_force_count(tiny_dirs, tmp_path, pair):
    chat_dir = tiny_dirs[("llama", "unigram", True)]
    if pair == "lora":
        from builders import make_adapter as _make_adapter

        base, tuned = probe.load_pair(chat_dir, adapter=_make_adapter(chat_dir, tmp_path / "a"))
    elif pair == "two":
        base, tuned = probe.load(tiny_dirs[("gpt2", "bpe", True)]), probe.load(chat_dir)
    else:
        base = tuned = probe.load(chat_dir)
    d = probe.diagnose(base, tuned, PROMPT, check=_check, force=FORCE, base_prompt=BASE_PROMPT,
                       max_new_tokens=LEN, samples=N, temperature=T, seed=SEED)
    assert d.samples == N and d.seed == SEED and d.temperature == T
    _brute_force({"base": base, "tuned": tuned}, d, _check)
    assert len({r.sample_texts for r in d.runs}) > 1  # the samples really differ between runs
    again = probe.diagnose(base, tuned, PROMPT, check=_check, force=FORCE, base_prompt=BASE_PROMPT,
                           max_new_tokens=LEN, samples=N, temperature=T, seed=SEED)
    assert [r.sample_texts for r in again.runs] == [r.sample_texts for r in d.runs]  # seeded


def test_greedy_only_stays_the_default_and_has_no_rates(chat_lm):
    d = probe.diagnose(chat_lm, chat_lm, PROMPT, expected="e", force=FORCE, max_new_tokens=4)
    assert d.samples == 0 and d.seed is None and all(r.rate is None for r in d.runs)
    assert d.verdict == d.leaning != "uncertain" and d.summary.endswith("(greedy)")


def _wilson_by_search(k, n, z=1.96):
    """The Wilson interval by its definition: all p with |k/n - p| <= z sqrt(p(1-p)/n)."""
    inside = lambda p: abs(k / n - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-15  # noqa: E731

    def edge(lo, hi):  # lo inside, hi outside
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if inside(mid) else (lo, mid)
        return lo

    p = k / n
    low = 0.0 if k == 0 else edge(p, 0.0)
    high = 1.0 if k == n else edge(p, 1.0)
    return low, high


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (3, 7), (0, 1)])
def test_wilson_interval_matches_its_definition(k, n):
    low, high = wilson(k, n)
    want = _wilson_by_search(k, n)
    assert low == pytest.approx(want[0], abs=1e-9) and high == pytest.approx(want[1], abs=1e-9)
    assert 0 <= low <= k / n <= high <= 1


def test_per_run_p_expected_equals_score_after_the_same_text(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", True)])
    expected = "Paris"
    d = probe.diagnose(lm, lm, PROMPT, expected=expected, force=FORCE, base_prompt=BASE_PROMPT,
                       max_new_tokens=3)
    by_hand = {
        "tuned": (probe.score(lm, PROMPT, expected), 0),
        "base": (probe.score(lm, BASE_PROMPT, " Paris", raw=True), 0),
    }
    forced = probe.score(lm, PROMPT, FORCE + " Paris")
    first = next(i for i, s in enumerate(forced.steps) if s.end > len(FORCE))
    by_hand["tuned_forced"] = by_hand["base_forced"] = (forced, first)
    for run in d.runs:
        trace, lo = by_hand[run.name]
        steps = trace.steps[lo:]
        assert run.p_expected == pytest.approx(math.exp(sum(s.logprob for s in steps)), rel=1e-4), run.name
        assert run.rank_expected == steps[0].rank, run.name
        want = next((s for s in steps if s.rank > 1), None)
        assert (run.divergent_step is None) == (want is None)
        if want is not None:
            assert run.divergent_step.id == want.id and run.divergent_step.index == want.index
    assert d.p_expected("tuned") == pytest.approx(d.run("tuned").p_expected, rel=1e-6)


def _run(name, passed, k=None, n=10):
    model = "tuned" if name.startswith("tuned") else name.split("_")[0]
    return SimpleNamespace(name=name, model=model, passed=passed, rate=None if k is None else PassRate(k, n))


def _runs(**rates):
    return {name: _run(name, k >= n / 2, k, n) for name, (k, n) in rates.items()}


@pytest.mark.parametrize("rates,verdict,leaning,text", [
    (dict(tuned=(0, 10), tuned_forced=(0, 10), base=(9, 10), base_forced=(0, 10)),
     "lost", "lost", "lost: base 9/10, tuned 0/10"),
    (dict(tuned=(2, 10), tuned_forced=(3, 10), base=(6, 10), base_forced=(1, 10)),
     "uncertain", "lost", "uncertain (leans lost): base 6/10, tuned forced 3/10"),
    (dict(tuned=(0, 10), tuned_forced=(0, 10), base=(2, 10), base_forced=(9, 10)),
     "lost", "lost", "lost: base forced 9/10, tuned 0/10"),  # names the run: not the base column
    (dict(tuned=(1, 10), tuned_forced=(8, 10), base=(9, 10), base_forced=(9, 10)),
     "not_triggered", "not_triggered", "not_triggered: tuned forced 8/10, tuned 1/10"),
    (dict(tuned=(3, 10), tuned_forced=(6, 10), base=(0, 10), base_forced=(0, 10)),
     "uncertain", "not_triggered", "uncertain (leans not_triggered): tuned forced 6/10, tuned 3/10"),
    (dict(tuned=(10, 10), tuned_forced=(0, 10)), "ok", "ok", "ok: tuned 10/10"),
    (dict(tuned=(8, 10)), "uncertain", "ok", "uncertain (leans ok): tuned 8/10"),
    (dict(tuned=(0, 10), tuned_forced=(1, 10), base=(0, 10), base_forced=(0, 10)),
     "never_had", "never_had", "never_had: base 0/10, tuned forced 1/10"),
    (dict(tuned=(0, 10), tuned_forced=(2, 10), base=(0, 10), base_forced=(0, 10)),
     "uncertain", "never_had", "uncertain (leans never_had): base 0/10, tuned forced 2/10"),
])
def test_sampled_verdict_rules_on_rigged_pass_rates(rates, verdict, leaning, text):
    runs = _runs(**rates)
    assert decide(runs) == (verdict, leaning)
    assert summary(verdict, leaning, runs) == text


def test_greedy_verdicts_are_never_uncertain_and_follow_the_old_table():
    for passed, want in [((True, False, False, False), "ok"), ((False, True, False, False), "not_triggered"),
                         ((False, False, True, False), "lost"), ((False, False, False, True), "lost"),
                         ((False, False, False, False), "never_had")]:
        runs = {n: _run(n, p) for n, p in zip(("tuned", "tuned_forced", "base", "base_forced"), passed)}
        assert decide(runs) == (want, want)
    assert PASS_RATE == 0.5 and set(RULES) == {"not_triggered", "lost", "never_had", "too_hard_for_size",
                                               "undertrained", "pattern_overfit"}


def _score_trace(logprob, rank):
    step = TokenStep(index=0, id=5, text=" Paris", start=0, end=6, logprob=logprob, prob=math.exp(logprob),
                     rank=rank, entropy=1.0, top=fake_trace([" Be"]).steps[0].top)
    return TokenTrace(prompt="p", text=" Paris", steps=(step,), kind="score")


def _sweep(greedy_flags):
    rows = tuple(SweepRow(values=(f"c{i}",), prompt=f"p{i}", prob=0.6 if g else 0.1, logprob=-0.5,
                          first_rank=1 if g else 4, first_prob=0.6, greedy=" Be", greedy_prob=0.6,
                          watch_is_greedy=g, top=()) for i, g in enumerate(greedy_flags))
    return Sweep(template="{country}", watch=" Be", slots={"country": tuple(r.values[0] for r in rows)}, rows=rows)


def _rigged(leaning="lost", tuned=(-3.0, 4), base=(-5.0, 9), sweep=None, reference=None):
    d = fake_diagnosis("x", leaning)
    traces = {"tuned": _score_trace(*tuned), "base": _score_trace(*base)}
    runs = d.runs if reference is None else d.runs + (replace(d.runs[0], name="reference", model="reference",
                                                              passed=reference),)
    return replace(d, leaning=leaning, expected_traces=traces, sweep=sweep, runs=runs)


def test_label_rules_on_rigged_diagnoses():
    assert UNDERTRAINED_GAIN == pytest.approx(math.log(2)) and OVERFIT_SHARE == 0.5
    assert labels_of(_rigged("lost", tuned=(-3.0, 4), base=(-5.0, 9))) == ("lost", "undertrained")
    assert labels_of(_rigged("lost", tuned=(-3.0, 4), base=(-3.5, 9))) == ("lost",)  # gain < log 2
    assert labels_of(_rigged("lost", tuned=(-0.1, 1), base=(-5.0, 9))) == ("lost",)  # at the top
    assert labels_of(_rigged("ok", tuned=(-3.0, 4), base=(-5.0, 9), sweep=_sweep([True] * 3))) == ()
    assert labels_of(_rigged("not_triggered", tuned=(-3.0, 4), base=(-3.0, 4),
                             sweep=_sweep([True, True, False, False]))) == ("not_triggered", "pattern_overfit")
    assert labels_of(_rigged("lost", tuned=(-3.0, 4), base=(-3.0, 4),
                             sweep=_sweep([True, False, False]))) == ("lost",)  # 1/3 < half
    assert labels_of(_rigged("never_had", base=(-3.0, 4))) == ("never_had",)
    assert labels_of(_rigged("never_had", base=(-3.0, 4), reference=False)) == ("never_had",)
    assert labels_of(_rigged("never_had", base=(-3.0, 4), reference=True)) == ("too_hard_for_size",)


def test_diagnose_with_a_sweep_and_a_reference_model(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", True)])
    ref = probe.load(tiny_dirs[("llama", "unigram", True)])
    ref_text = probe.generate(ref, PROMPT, max_new_tokens=4).text
    d = probe.diagnose(lm, lm, PROMPT, check=lambda t: t == ref_text, expected="Paris", max_new_tokens=4,
                       sweep={"country": ["France", "Spain", "Peru"]}, reference=ref)
    assert d.leaning == "never_had" and d.run("reference").passed
    assert "too_hard_for_size" in d.labels and "never_had" not in d.labels
    div = d.divergence("tuned")
    assert div.diverged  # a random tiny model does not write "Paris": it has a wrong answer
    # the sweep watches that wrong answer on the other countries
    assert d.sweep.watch == div.preferred.text and d.sweep.template == "What is the capital of {country}?"
    assert [r.values for r in d.sweep.rows] == [("Spain",), ("Peru",)]
    assert ("pattern_overfit" in d.labels) == (d.overfit_share() >= OVERFIT_SHARE)
    assert json_roundtrip(d) == d
    with pytest.raises(ValueError, match="sweep slot 'city'"):
        probe.diagnose(lm, lm, PROMPT, expected="Paris", sweep={"city": ["Lima", "Rome"]})


def test_a_bad_sweep_in_a_case_file_is_that_lines_error(chat_lm):
    out = probe.read_cases([{"id": "a", "prompt": PROMPT, "expected": "Paris", "sweep": {"country": "France"}},
                            {"id": "b", "prompt": PROMPT, "expected": "Paris",
                             "sweep": {"country": ["France", "Spain"]}}])
    assert out[0].field == "sweep" and out[1].sweep == {"country": ["France", "Spain"]}


def test_sampled_diagnosis_round_trips_and_shows_its_rates(chat_lm, tmp_path):
    d = probe.diagnose(chat_lm, chat_lm, PROMPT, expected="e", force=FORCE, max_new_tokens=3, samples=4, seed=1)
    assert json_roundtrip(d) == d
    case = probe.Case.from_result(d, id="sampled-1")
    assert probe.Case.load(case.save(tmp_path / "c.json")) == case and case.labels == d.labels
    text, html = str(d), d._repr_html_()
    for run in d.runs:
        assert f"{run.rate}" in text and str(run.rate) in html
    assert d.summary in text and d.summary.split(":")[0] in html
    from probe.render.text import verdict_table

    table = verdict_table([d])
    mark = "\u2713" if d.run("tuned").passed else "\u2717"  # the greedy check, as the table marks it
    assert f"{mark} {d.run('tuned').rate}" in table


def test_an_old_schema_1_case_file_still_loads(tmp_path):
    from probe.cases.case import SCHEMA

    old = Path(__file__).resolve().parents[1] / "fixtures" / "case-schema1.json"
    assert '"schema": 1' in old.read_text(encoding="utf-8")
    case = probe.Case.load(old)
    d = case.results["diagnosis"]
    assert case.verdict == d.verdict == d.leaning == "never_had"
    assert case.labels == d.labels == ("never_had",)  # the reader labels it from its evidence
    assert all(r.rate is None and r.expected_trace is None for r in d.runs) and d.samples == 0
    assert d.p_expected("tuned") is not None and "never_had" in str(d)
    again = probe.Case.load(case.save(tmp_path / "new.json"))
    assert again == case and f'"schema": {SCHEMA}' in (tmp_path / "new.json").read_text(encoding="utf-8")
