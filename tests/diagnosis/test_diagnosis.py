import copy
import json

import pytest
import torch

import probe
from probe.diagnosis.result import verdict_of


def rigged(lm, favourite_text: str):
    """A copy of the tiny GPT-2 that always writes ``favourite_text`` (one token)."""
    (tid,) = lm.tokenizer.encode(favourite_text)
    model = copy.deepcopy(lm.model)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[tid] = 1.0
    return probe.load((model, lm.tokenizer), name=f"always{favourite_text!r}")


@pytest.fixture(scope="module")
def the_lm(gpt2_lm):
    return rigged(gpt2_lm, " the")


@pytest.fixture(scope="module")
def of_lm(gpt2_lm):
    return rigged(gpt2_lm, " of")


@pytest.mark.parametrize("passed,verdict", [
    ({"tuned": True}, "ok"),
    ({"tuned": True, "tuned_forced": False, "base": False}, "ok"),
    ({"tuned": False, "tuned_forced": True, "base": False}, "not_triggered"),
    ({"tuned": False, "tuned_forced": False, "base": True}, "lost"),
    ({"tuned": False, "tuned_forced": False, "base": False, "base_forced": True}, "lost"),
    ({"tuned": False, "tuned_forced": False, "base": False, "base_forced": False}, "never_had"),
    ({"tuned": False}, "never_had"),
])
def test_verdict_table(passed, verdict):
    assert verdict_of(passed) == verdict


def test_lost_when_only_the_base_gets_it(the_lm, of_lm):
    # base always writes " the", tuned always " of": "the" is right.
    d = probe.diagnose(the_lm, of_lm, "Hello", expected=" the", force=" of", max_new_tokens=4)
    assert d.verdict == "lost"
    assert [r.name for r in d.runs] == ["tuned", "tuned_forced", "base", "base_forced"]
    assert d.run("tuned").text == " of of of of" and not d.run("tuned").passed
    assert d.run("base").passed and "gives ' the'" in d.run("base").reason
    assert d.p_expected("base") > 0.5 > d.p_expected("tuned")
    assert d.rank_expected("base") == 1 and d.rank_expected("tuned") > 1
    assert not d.divergence("base").diverged and d.divergence("tuned").preferred.text == " of"
    assert "LOST" in str(d) and "fine-tuning removed it" in d.explanation


def test_not_triggered_when_forcing_the_start_fixes_it(the_lm, of_lm):
    d = probe.diagnose(the_lm, of_lm, "Hello", check=lambda t: t.startswith(" the"), force=" the",
                       max_new_tokens=3)
    assert d.verdict == "not_triggered" and d.run("tuned_forced").passed
    assert d.run("tuned_forced").trace.steps[0].forced


def test_ok_and_never_had(the_lm, of_lm):
    assert probe.diagnose(the_lm, of_lm, "Hello", expected=" of", max_new_tokens=2).verdict == "ok"
    d = probe.diagnose(the_lm, of_lm, "Hello", expected=" Paris", force=" The", max_new_tokens=2)
    assert d.verdict == "never_had" and not any(r.passed for r in d.runs)


def test_base_prompt_is_raw_text_for_the_base(chat_lm):
    d = probe.diagnose(chat_lm, chat_lm, "What is the capital of France?", expected="Paris",
                       base_prompt="The capital of France is", max_new_tokens=2)
    assert d.run("base").trace.prompt == "The capital of France is"
    assert d.run("tuned").trace.prompt.endswith("<|im_start|>assistant\n")
    assert d.expected_traces["base"].prompt == d.expected_traces["tuned"].prompt == d.run("tuned").trace.prompt
    forced = probe.diagnose(chat_lm, chat_lm, "What is the capital of France?", expected="Paris",
                            force="The capital", base_prompt="The capital of France is", max_new_tokens=2)
    assert forced.run("base_forced").trace.prompt == forced.run("tuned_forced").trace.prompt


def test_diagnosis_round_trips_and_renders_escaped(the_lm, of_lm):
    d = probe.diagnose(the_lm, of_lm, "<b>Hello</b>", expected=" the", force=" of", max_new_tokens=2,
                       case_id="x<y", tags=("t",))
    again = probe.Diagnosis.from_dict(json.loads(json.dumps(d.to_dict())))
    assert again == d
    html = d._repr_html_()
    assert "<b>Hello" not in html and "&lt;b&gt;Hello" in html and "x&lt;y" in html


def test_diagnose_needs_a_check_or_expected(the_lm):
    with pytest.raises(ValueError, match="check= or expected="):
        probe.diagnose(the_lm, the_lm, "Hello")


def test_diagnose_many_reports_bad_lines_and_failing_checks_and_runs_the_rest(the_lm, of_lm, tmp_path):
    def boom(text):
        raise RuntimeError("check exploded")

    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "good", "prompt": "Hello", "expected": " the", "force": " of"}),
        "{not json",
        json.dumps({"id": "nocheck", "prompt": "Hello"}),
        json.dumps({"id": "badforce", "prompt": "Hello", "expected": "x", "force": 3}),
        json.dumps({"id": "typo", "prompt": "Hello", "expected": "x", "expcted": "y"}),
        "",
        json.dumps({"id": "ok", "prompt": "Hello", "check": {"contains": "of"}, "tags": ["a"]}),
    ]), encoding="utf-8")
    results = probe.diagnose_many(the_lm, of_lm, path, progress=False, max_new_tokens=2)
    failed = [isinstance(r, probe.FailedCase) for r in results]
    assert failed == [False, True, True, True, True, False]
    assert [r.verdict for r in results if not isinstance(r, probe.FailedCase)] == ["lost", "ok"]
    assert results[1].line == 2 and "not valid JSON" in results[1].message
    assert results[2].line == 3 and results[2].field == "check"
    assert results[3].field == "force" and "line 4" in str(results[3])
    assert results[4].field == "expcted"
    assert results[5].tags == ("a",) and results[5].case_id == "ok"
    raising = probe.diagnose_many(the_lm, of_lm, [{"id": "boom", "prompt": "Hello", "check": "json_valid"},
                                                  probe.CaseSpec("b2", "Hello", check=boom)],
                                  progress=False, max_new_tokens=2)
    assert raising[0].verdict == "never_had"
    assert isinstance(raising[1], probe.FailedCase) and "check exploded" in raising[1].message
    assert probe.CaseError is probe.FailedCase  # the old name still imports
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        probe.diagnose_many(the_lm, of_lm, tmp_path / "nope.jsonl", progress=False)


def test_compare_same_model_has_no_drop(raw_lm):
    c = probe.compare(raw_lm, raw_lm, "The capital of France is", " Paris. Tokyo.")
    assert c.first_drop is None and all(s.delta == 0 for s in c.segments)
    assert "".join(s.text for s in c.segments) == " Paris. Tokyo."


def test_compare_finds_the_first_drop(the_lm, of_lm):
    c = probe.compare(the_lm, of_lm, "Hello", " the of the", threshold=1.0)
    assert [s.text for s in c.segments] == [" the", " of", " the"]
    assert c.first_drop == 0 and c.segments[1].delta > 0
    assert c.largest_drops(1)[0].text == " the"
    assert c.delta_logprob == pytest.approx(sum(s.delta for s in c.segments))
    assert probe.Comparison.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert "first drop" in str(c) and "probe-strip" in c._repr_html_()


def test_compare_aligns_different_tokenizers_by_characters(tiny_dirs):
    bpe = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    uni = probe.load(tiny_dirs[("llama", "unigram", False)])
    c = probe.compare(bpe, uni, "The capital of France is", " Paris, the capital.")
    assert "".join(s.text for s in c.segments) == " Paris, the capital."
    assert sum(s.base_logprob for s in c.segments) == pytest.approx(c.base.total_logprob)
    assert sum(s.tuned_logprob for s in c.segments) == pytest.approx(c.tuned.total_logprob)
    for s in c.segments:
        assert s.base_steps and s.tuned_steps


def test_lora_pair_runs_in_one_mixed_batch_with_the_same_results(tiny_dirs, tmp_path):
    from builders import make_adapter as _make_adapter

    base_dir = tiny_dirs[("llama", "unigram", True)]
    base, tuned = probe.load_pair(base_dir, adapter=_make_adapter(base_dir, tmp_path / "a"))
    calls = []
    hook = tuned.model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw.get("adapter_names")),
                                                 with_kwargs=True)
    try:
        d = probe.diagnose(base, tuned, "What is the capital of France?", expected="Paris",
                           force="The capital", base_prompt="The capital of France is", max_new_tokens=5)
    finally:
        hook.remove()
    assert ["default", "default", "__base__", "__base__"] in calls  # one batch, per-row adapters
    apart = {
        "tuned": probe.generate(tuned, "What is the capital of France?", max_new_tokens=5),
        "tuned_forced": probe.generate(tuned, "What is the capital of France?", max_new_tokens=5, force="The capital"),
        "base": probe.generate(base, "The capital of France is", max_new_tokens=5, raw=True),
        "base_forced": probe.generate(base, "What is the capital of France?", max_new_tokens=5, force="The capital"),
    }
    from assertions import assert_same_greedy
    from probe.engine.prompts import encode, encode_prompt, render

    question = "What is the capital of France?"
    prefixes = {"tuned": encode_prompt(tuned, render(tuned, question)),
                "tuned_forced": encode(tuned, render(tuned, question), "The capital").ids,
                "base": encode_prompt(base, render(base, "The capital of France is", raw=True)),
                "base_forced": encode(base, render(base, question), "The capital").ids}
    for name, alone in apart.items():
        run, handle = d.run(name), (tuned if name.startswith("tuned") else base)
        nf = sum(s.forced for s in alone.steps)  # the forced tokens: the same ids, no choice
        assert run.trace.ids[:nf] == alone.ids[:nf] and sum(s.forced for s in run.trace.steps) == nf, name
        # batched vs alone: the same tokens, or parted at a near-tie (within 2e-4 nats)
        same = nf + assert_same_greedy(handle, prefixes[name], run.trace.ids[nf:], alone.ids[nf:], tie=2e-4)
        for x, y in zip(run.trace.steps[:same], alone.steps[:same]):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4)
    assert apart["base"].ids != apart["tuned"].ids or apart["base"].total_logprob != pytest.approx(
        apart["tuned"].total_logprob)


def test_diagnose_warns_once_when_tuned_is_the_base_in_disguise(tiny_dirs):
    import warnings

    folder = tiny_dirs[("llama", "unigram", False)]
    base, tuned = probe.load(folder), probe.load(folder)  # two handles on the same weights' copy
    with pytest.warns(probe.IdenticalModelsWarning, match="diagnose"):
        probe.diagnose(base, tuned, "The capital of France is", expected=" Paris", max_new_tokens=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", probe.IdenticalModelsWarning)  # checked once per pair
        probe.diagnose(base, tuned, "The capital of Japan is", expected=" Tokyo", max_new_tokens=3)
