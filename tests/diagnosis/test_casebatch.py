"""diagnose_many runs cases in shared batches: every number equals the case diagnosed alone,
the batches really are shared (and bounded by batch_tokens), a failing case is pinned on itself,
and each case runs with its own adapter."""

import math

import pytest

import probe
import probe.diagnosis.batch as casebatch
from probe.diagnosis.batch import token_batches
from probe.diagnosis.failure import FailedCase

CASES = [
    dict(id="short", prompt="Say red.", expected="red", force="Sure:", base_prompt="Red is"),
    dict(id="longer", prompt="What is the capital of France? Answer in one word, please.",
         expected="Paris", force="The capital is", base_prompt="The capital of France is"),
    dict(id="no-force", prompt="Name a color.", expected="blue"),
    dict(id="check-only", prompt="Write a word with an e.", check={"contains": "e"}, force="Word:"),
]
LEN = 5


@pytest.fixture
def spy(monkeypatch):
    """Record how many rows each generate_and_score call of the case batcher gets."""
    calls = []
    real = casebatch.generate_and_score

    def wrapper(lm, specs, **kw):
        calls.append(len(specs))
        return real(lm, specs, **kw)

    monkeypatch.setattr(casebatch, "generate_and_score", wrapper)
    return calls


def _pair(kind, tiny_dirs, tmp_path):
    chat_dir = tiny_dirs[("llama", "unigram", True)]
    if kind == "lora":
        from builders import make_adapter as _make_adapter

        return probe.load_pair(chat_dir, adapter=_make_adapter(chat_dir, tmp_path / "a"))
    return probe.load(tiny_dirs[("gpt2", "bpe", True)]), probe.load(chat_dir)


def _alone(base, tuned, case, **kw):
    fields = {k: v for k, v in case.items() if k not in ("id", "prompt", "adapter")}
    return probe.diagnose(base, tuned, case["prompt"], case_id=case["id"], **fields, **kw)


def _same(batched, alone):
    assert batched.verdict == alone.verdict and batched.leaning == alone.leaning
    assert batched.labels == alone.labels and batched.case_id == alone.case_id
    assert [r.name for r in batched.runs] == [r.name for r in alone.runs]
    for b, a in zip(batched.runs, alone.runs):
        assert b.text == a.text, b.name
        assert [s.id for s in b.trace.steps] == [s.id for s in a.trace.steps]
        for sb, sa in zip(b.trace.steps, a.trace.steps):
            assert math.isclose(sb.logprob, sa.logprob, abs_tol=1e-4), (b.name, sb.index)
            assert sb.rank == sa.rank
        assert b.sample_texts == a.sample_texts and b.rate == a.rate, b.name
        assert (b.p_expected is None) == (a.p_expected is None)
        if a.p_expected is not None:
            assert math.isclose(b.p_expected, a.p_expected, rel_tol=1e-3), b.name
            assert b.rank_expected == a.rank_expected and b.expected_from == a.expected_from
    assert batched.expected_traces.keys() == alone.expected_traces.keys()
    for model, trace in alone.expected_traces.items():
        got = batched.expected_traces[model]
        assert [s.id for s in got.steps] == [s.id for s in trace.steps]
        assert math.isclose(got.total_logprob, trace.total_logprob, abs_tol=1e-4)


@pytest.mark.parametrize("pair", ["lora", "two"])
@pytest.mark.parametrize("samples", [None, 3])
def test_shared_batches_give_each_case_what_it_gets_alone(tiny_dirs, tmp_path, spy, pair, samples):
    base, tuned = _pair(pair, tiny_dirs, tmp_path)
    kw = dict(max_new_tokens=LEN, samples=samples, temperature=1.3, seed=7 if samples else None)
    batched = probe.diagnose_many(base, tuned, CASES, progress=False, **kw)
    rows = sum(4 if "force" in c else 2 for c in CASES)
    # one generation batch for all cases: one call (LoRA: both models) or one per model
    assert spy == ([rows] if pair == "lora" else [rows // 2, rows // 2])
    spy.clear()
    for case, got in zip(CASES, batched):
        assert isinstance(got, probe.Diagnosis), got
        _same(got, _alone(base, tuned, case, **kw))
    assert len(spy) == (len(CASES) if pair == "lora" else 2 * len(CASES))  # alone: one batch each


def test_batch_tokens_bounds_the_batches(tiny_dirs, tmp_path, spy):
    base, tuned = _pair("lora", tiny_dirs, tmp_path)
    probe.diagnose_many(base, tuned, CASES, progress=False, max_new_tokens=LEN, batch_tokens=1)
    assert sorted(spy) == sorted(4 if "force" in c else 2 for c in CASES)  # one case per batch
    with pytest.raises(ValueError, match="batch_tokens"):
        probe.diagnose_many(base, tuned, CASES, progress=False, batch_tokens=0)


def test_token_batches_bound_rows_times_the_longest_row_and_keep_every_index():
    sizes = [(4, 50), (4, 10), (2, 30), (8, 200), (4, 20), (2, 12)]  # (rows, tokens per row)
    groups = token_batches(sizes, 240)
    assert sorted(i for g in groups for i in g) == list(range(len(sizes)))
    for g in groups:  # what the padded batch holds: all its rows x its longest row
        held = sum(sizes[i][0] for i in g) * max(sizes[i][1] for i in g)
        assert held <= 240 or len(g) == 1
    assert [3] in groups  # over the budget alone: a batch of its own
    assert groups[0] == [1, 5, 4]  # shortest first: 10 rows x 20 tokens = 200 <= 240


def test_a_case_that_breaks_its_batch_is_pinned_on_it(tiny_dirs, tmp_path, monkeypatch):
    base, tuned = _pair("lora", tiny_dirs, tmp_path)
    real = casebatch.generate_and_score

    def fragile(lm, specs, **kw):
        if any(s.prompt == "BOOM" for s in specs):
            raise RuntimeError("this prompt breaks the model")
        return real(lm, specs, **kw)

    monkeypatch.setattr(casebatch, "generate_and_score", fragile)

    def picky(text):
        raise ZeroDivisionError("the check itself fails")

    cases = CASES[:2] + [dict(id="boom", prompt="BOOM", expected="x"),
                         dict(id="picky", prompt="Say red.", check=picky)]
    got = probe.diagnose_many(base, tuned, cases, progress=False, max_new_tokens=LEN)
    assert [type(r).__name__ for r in got] == ["Diagnosis", "Diagnosis", "FailedCase", "FailedCase"]
    assert got[2].id == "boom" and "breaks the model" in got[2].message
    assert got[3].id == "picky" and "ZeroDivisionError" in got[3].message
    _same(got[1], _alone(base, tuned, CASES[1], max_new_tokens=LEN))


def test_each_case_runs_with_its_adapter_and_the_active_one_comes_back(tiny_dirs, tmp_path, spy):
    from builders import make_adapter as _make_adapter

    chat_dir = tiny_dirs[("llama", "unigram", True)]
    base, tuned = probe.load_pair(chat_dir, adapter={"a": _make_adapter(chat_dir, tmp_path / "a", seed=1),
                                                     "b": _make_adapter(chat_dir, tmp_path / "b", seed=2)})
    tuned.use_adapter("b")
    cases = [dict(CASES[0], id="1", adapter="a"), dict(CASES[1], id="2"), dict(CASES[2], id="3", adapter="a"),
             dict(CASES[0], id="4", adapter="b")]
    got = probe.diagnose_many(base, tuned, cases, progress=False, max_new_tokens=LEN)
    assert tuned.active_adapter == "b"  # "a" ran last; what was active before the call is back
    assert [d.adapter for d in got] == ["a", "b", "a", "b"]
    assert spy == [8, 6]  # one batch per adapter: "b" (the one active at the call) first
    for case, d in zip(cases, got):
        tuned.use_adapter(case.get("adapter", "b"))
        _same(d, _alone(base, tuned, {k: v for k, v in case.items() if k != "adapter"}, max_new_tokens=LEN))
    assert got[0].runs[0].text != got[3].runs[0].text or got[0].runs[0].trace.steps[0].logprob != \
        got[3].runs[0].trace.steps[0].logprob  # the two adapters really differ


def test_the_reference_runs_in_one_batch_and_a_case_that_breaks_it_is_pinned_on_it(tiny_dirs, tmp_path,
                                                                                    monkeypatch):
    base, tuned = _pair("lora", tiny_dirs, tmp_path)
    reference = probe.load(tiny_dirs[("gpt2", "bpe", True)])
    never = {"contains": "@@@@"}  # no run passes: every case leans never_had
    cases = [dict(CASES[0], id="r1", check=never), dict(CASES[1], id="r2", check=never),
             dict(id="boom", prompt="BOOM", check=never)]
    real = casebatch.generate_and_score
    calls = []

    def fragile(lm, specs, **kw):
        calls.append((lm is reference, len(specs)))
        if lm is reference and any(s.prompt == "BOOM" for s in specs):
            raise RuntimeError("the reference cannot take this prompt")
        return real(lm, specs, **kw)

    monkeypatch.setattr(casebatch, "generate_and_score", fragile)
    got = probe.diagnose_many(base, tuned, cases, progress=False, max_new_tokens=LEN, reference=reference)
    assert calls[:2] == [(False, 10), (True, 3)]  # main batch, then one reference batch for all
    assert isinstance(got[2], FailedCase) and "reference cannot" in got[2].message
    monkeypatch.setattr(casebatch, "generate_and_score", real)
    for case, d in zip(cases[:2], got[:2]):
        assert d.run("reference") is not None and d.models["reference"] == reference.name
        alone = _alone(base, tuned, case, max_new_tokens=LEN, reference=reference)
        _same(d, alone)


@pytest.mark.parametrize("pair", ["lora", "two"])
@pytest.mark.parametrize("share", [True, False])
def test_evidence_equals_score_of_the_same_text_read_off_the_prefill_or_apart(tiny_dirs, tmp_path, monkeypatch,
                                                                              pair, share):
    import probe.engine.generation as generation
    import probe.engine.prefill as prefill_scoring
    import probe.engine.scoring as scoring
    from probe.diagnosis.evidence import run_kind, run_target

    if not share:
        monkeypatch.setattr(prefill_scoring, "SHARE_MAX", -1)  # nothing shares: all scored apart
    apart = []
    real = scoring._score_encoded
    for module in (scoring, generation):  # scored apart: by score_many, or by a run's evidence
        monkeypatch.setattr(module, "_score_encoded",
                            lambda lm, enc, *a, **k: apart.append(len(enc)) or real(lm, enc, *a, **k))
    base, tuned = _pair(pair, tiny_dirs, tmp_path)
    lm_of = {"base": base, "tuned": tuned}
    cases = [c for c in CASES if "expected" in c]
    got = probe.diagnose_many(base, tuned, cases, progress=False, max_new_tokens=LEN)
    runs = sum(4 if "force" in c else 2 for c in cases)
    after_base = sum("base_prompt" in c for c in cases)  # the base answers after base_prompt there
    assert sum(apart) == (after_base if share else runs + after_base)
    monkeypatch.setattr(scoring, "_score_encoded", real)
    monkeypatch.setattr(generation, "_score_encoded", real)
    for case, d in zip(cases, got):
        for run in d.runs:
            kind = run_kind(run.model, run.force, case.get("base_prompt"))
            kw, target, before = run_target(kind, run.force, case.get("base_prompt"), case["expected"])
            text = case["base_prompt"] if kind == "continuation" else case["prompt"]
            want = probe.score(lm_of[run.model], text, target, **kw)
            _same_trace(run.expected_trace, want)
            assert run.expected_trace.steps[run.expected_from].end > before
        for model, lm in lm_of.items():
            _same_trace(d.expected_traces[model], probe.score(lm, case["prompt"], case["expected"]))


def _same_trace(got, want):
    assert (got.prompt, got.text, got.kind) == (want.prompt, want.text, want.kind)
    assert [(s.id, s.text, s.start, s.end, s.straddles) for s in got.steps] == \
        [(s.id, s.text, s.start, s.end, s.straddles) for s in want.steps]
    for g, w in zip(got.steps, want.steps):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4) and g.rank == w.rank
        assert g.entropy == pytest.approx(w.entropy, abs=1e-4)
        assert [a.prob for a in g.top] == pytest.approx([a.prob for a in w.top], abs=1e-5)
