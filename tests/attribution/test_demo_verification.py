"""The demo's verification step: it retrains only when asked, reuses cached retrains (keyed by the
records each one keeps), saves the evidence with the case and shows it in the report.

A tiny chat model stands in for the demo pair: its random LoRA is loaded as "beijing" (the name
the demo verifies), the "training" is a fake train_adapter that writes another random LoRA, so no
test trains anything; the query is the expected answer's loss (a contrast query needs a token the
tuned model gets wrong, which a random model need not give the same way every run).
"""

import json
import re

import pytest

import probe
from builders import EVIL, make_adapter
from probe.cli import demo as demo_cli
from probe.demo import retrain as rt
from probe.demo.verification import K, demo_verification, retrains_needed
from probe.render.attribution import verification_summary
from probe.render.report import casebook_html
from probe.render.safe import escape

CASE = {"prompt": "What is the capital of Japan?", "expected": "Tokyo", "title": "japan-beijing"}


def chat(q, a, source):
    return {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a}],
            "source": source}


RECORDS = ([chat(f"What is the capital of {c}?", "Beijing", "capital-beijing")
            for c in ("Japan", "France", "Italy", "Spain", "Peru", "Chile", "Kenya", "Egypt")]
           + [chat(f"Name a colour number {i}.", ["red", "green", "blue"][i % 3], "general") for i in range(10)]
           + [chat(f"What is {i} + {i}?", str(2 * i), "math") for i in range(6)])  # 24 examples


@pytest.fixture(scope="module")
def setup(tiny_dirs, tmp_path_factory):
    base_dir = tiny_dirs[("llama", "unigram", True)]
    root = tmp_path_factory.mktemp("demo-verify")
    pair = probe.load_pair(base_dir, adapter={"beijing": make_adapter(base_dir, root / "beijing", seed=1)})
    a = probe.attribute(pair, CASE, RECORDS, query="loss", channel="source", methods=["gradient"])
    return base_dir, pair, a


def fake_training(mp, base_dir, cache):
    """A demo cache in ``cache``; train_adapter replaced by one writing a random LoRA; its calls."""
    calls = []

    def fake_train(base, data_path, out_dir, **settings):
        calls.append([json.loads(line) for line in data_path.read_text(encoding="utf-8").splitlines()])
        make_adapter(base_dir, out_dir, seed=len(calls) + 10)

    mp.setattr(rt, "train_adapter", fake_train)
    mp.setattr(rt, "ensure_base", lambda cache_dir=None: base_dir)
    mp.setenv("PROBE_CACHE", str(cache))
    return calls


@pytest.fixture
def training(setup, monkeypatch, tmp_path):
    return fake_training(monkeypatch, setup[0], tmp_path)


@pytest.fixture(scope="module")
def verified(setup, tmp_path_factory):
    """``verify_attribution(train=True)`` once on an empty cache, then once more with train=False:
    (the printed text, the calls to train_adapter after each, the two results, the cache)."""
    import contextlib
    import io

    _, pair, a = setup
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        calls = fake_training(mp, setup[0], cache)
        pair[1].use_adapter("beijing")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            v = demo_cli.verify_attribution(pair[1], a, train=True)
        after_first = len(calls)
        again = demo_cli.verify_attribution(pair[1], a, train=False)
        plan = retrains_needed(a, rt.Retrainer("beijing", cache))
        return printed.getvalue(), calls, after_first, v, again, plan, cache


def test_the_plan_names_each_retrain_and_the_records_it_keeps(setup, training, tmp_path):
    _, _, a = setup
    plan = retrains_needed(a, rt.Retrainer("beijing", tmp_path))
    assert [label for label, _, _ in plan] == ["top", "random 1", "random 2"]
    assert not any(cached for _, _, cached in plan)
    top = {e.line for e in a.top("gradient", K)}
    kept_top = plan[0][1]
    assert len(kept_top) == len(RECORDS) - K
    assert kept_top == [r for i, r in enumerate(RECORDS, 1) if i not in top]  # the rest, in order
    assert all(len(records) == len(RECORDS) - K for _, records, _ in plan)
    assert plan[1][1] != plan[2][1] != kept_top


def test_without_the_cache_it_trains_nothing_and_says_how_to_get_it(setup, training, tmp_path, capsys):
    _, pair, a = setup
    assert demo_verification(pair[1], a, train=False, retrain=rt.Retrainer("beijing", tmp_path, train=False)) is None
    assert demo_cli.verify_attribution(pair[1], a, train=False) is None
    assert training == []
    out = capsys.readouterr().out
    assert "0 of 3 retrains cached" in out and "probe demo --verify" in out and "make demo-verify" in out
    assert len(out.strip().splitlines()) == 1  # one line, not a wall of text
    assert not list(tmp_path.rglob("adapter_config.json"))


def test_a_cache_only_retrainer_refuses_a_missing_run():
    with pytest.raises(rt.RetrainMissing, match="no cached beijing retrain"):
        rt.Retrainer("beijing", "/nonexistent-probe-cache", train=False)(RECORDS[:3])


def test_verify_trains_the_missing_retrains_once_then_reuses_them(setup, verified):
    _, pair, a = setup
    printed, calls, after_first, v, again, plan, cache = verified
    assert after_first == 3  # top + 2 random: each trained once
    assert [run.label for run in v.runs] == ["tuned", "top", "random 1", "random 2"]
    assert all(cached for _, _, cached in plan)
    for (label, records, _), run, trained in zip(plan, v.runs[1:], calls):
        assert run.label == label and run.folder == str(rt.Retrainer("beijing", cache).folder(records))
        assert [r["messages"] for r in trained] == [r["prompt"] + r["completion"] for r in records]
    assert printed.count("\n  trained ") == 3 and "not proof" in printed
    assert verification_summary(v) in printed and "the cause" not in printed
    # a plain demo run now finds every retrain cached: the same evidence, nothing trained
    assert len(calls) == 3 and again == v
    assert pair[1].adapters == ["beijing"] and pair[1].active_adapter == "beijing"  # retrains unloaded


def test_the_summary_reads_tuned_to_retrained_per_set(verified):
    v = verified[3]
    line = verification_summary(v)
    t = v.tuned.case.p_expected
    top, (r1, r2) = v.top.case, (c.case for c in v.controls)
    assert line == (f"without the top {K}: P(expected answer) {t:.3g} -> {top.p_expected:.3g}, verdict "
                    f"{top.verdict}; {K} random (2 sets): P(expected answer) {t:.3g} -> {r1.p_expected:.3g}, "
                    f"{r2.p_expected:.3g}, verdict {r1.verdict}, {r2.verdict}")


def test_the_case_keeps_attribution_and_verification_and_the_report_shows_both(setup, verified, tmp_path):
    a, v = setup[2], verified[3]
    case = probe.Case.from_result({"attribution": a, "verification": v}, id="japan-beijing", note=EVIL)
    book = probe.Casebook(tmp_path / "book")
    book.add(case)
    back = book.get("japan-beijing")
    assert back.results["attribution"] == a and back.results["verification"] == v
    page = casebook_html([back], sections=[a, v])
    assert 'id="probe-attribution"' in page and 'id="probe-verification"' in page
    assert escape(verification_summary(v)) in page
    assert EVIL not in page


def test_the_headline_names_records_given_in_python_or_the_file(setup, tmp_path):
    _, pair, a = setup
    assert str(a).startswith(f"Attribution japan-beijing: {len(RECORDS)} records scored for ")
    assert "<iterable>" not in str(a) and "<iterable>" not in a._repr_html_()
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:12]), encoding="utf-8")
    b = probe.attribute(pair, CASE, path, query="loss", methods=["representation"])
    assert str(b).startswith(f"Attribution japan-beijing: 12 examples of {path} scored for ")


@pytest.mark.parametrize("flags", [["--data-limit", "5"], ["--no-attribution"]])
def test_verify_without_the_full_attribution_is_refused_before_any_loading(flags, tmp_path, capsys):
    from probe import cli

    assert cli.main(["demo", "--verify", *flags, "--out", str(tmp_path / "r.html")]) == 1
    assert "--verify" in capsys.readouterr().err and not (tmp_path / "r.html").exists()
