"""Case: build from any result, save, load back equal; clear errors for bad files."""

import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import probe
from probe.cases.case import SCHEMA, Case, CaseFileError, ModelInfo
from probe.diagnosis.compare import compare_traces
from probe.diagnosis.result import Diagnosis, Run
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.diagnosis.divergence import Divergence, TraceDivergence

# Any text at all: unicode, control characters, lone surrogates, very long strings. One thing
# JSON cannot keep apart: a high surrogate directly followed by a low one is written "\ud800\udc00",
# exactly what the astral character they spell (U+10000) is written as, so it reads back as that
# character (the same UTF-16; README, "Save bad cases"). Such a pair is split by a space here, and
# a text never ends in a high surrogate (texts are joined into a trace's text); a lone surrogate,
# beside any other character, still has to come back exactly.
_PAIR = re.compile("([\ud800-\udbff])(?=[\udc00-\udfff]|$)")
any_text = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(st.characters(codec=None, exclude_categories=()), min_size=1000, max_size=3000),
).map(lambda s: _PAIR.sub("\\1 ", s))
probs = st.floats(0, 1)
logprobs = st.one_of(st.floats(-50, 0), st.just(-math.inf))


@st.composite
def traces(draw, kind="score"):
    texts = draw(st.lists(any_text, min_size=1, max_size=4))
    steps, start = [], 0
    for i, t in enumerate(texts):
        alt = Alternative(draw(st.integers(0, 10**6)), draw(any_text), draw(probs), draw(logprobs))
        steps.append(TokenStep(index=i, id=draw(st.integers(0, 10**6)), text=t, start=start,
                               end=start + len(t), logprob=draw(logprobs), prob=draw(probs),
                               rank=draw(st.integers(1, 10**6)), entropy=draw(st.floats(0, 12)),
                               top=(alt,), forced=draw(st.booleans()), watch={draw(any_text): draw(probs)}))
        start += len(t)
    return TokenTrace(prompt=draw(any_text), text="".join(texts), steps=tuple(steps), kind=kind,
                      model=draw(any_text), stop_reason="length" if kind == "generate" else None,
                      settings={"top_k": 1, "note": draw(any_text)})


@st.composite
def diagnoses(draw):
    runs = tuple(Run(name, model, draw(any_text), draw(traces("generate")), draw(st.booleans()), draw(any_text))
                 for name, model in (("tuned", "tuned"), ("tuned_forced", "tuned"), ("base", "base")))
    expected = draw(traces())
    return Diagnosis(verdict=draw(st.sampled_from(["ok", "lost", "never_had", "not_triggered"])),
                     prompt=draw(st.one_of(any_text, st.just([{"role": "user", "content": "hi"}]))),
                     base_prompt=draw(st.one_of(st.none(), any_text)), expected=expected.text,
                     force=draw(st.one_of(st.none(), any_text)), check=draw(any_text), runs=runs,
                     expected_traces={"tuned": expected, "base": expected}, case_id=draw(any_text),
                     tags=tuple(draw(st.lists(any_text, max_size=3))), models={"base": "b", "tuned": "t"},
                     adapter=draw(st.one_of(st.none(), any_text)))


def _divergence(trace):
    return Divergence(True, trace.text, "", 0, 0, trace.steps[0], trace)


results = st.one_of(
    traces(), traces("generate"), diagnoses(), traces().map(_divergence),
    st.tuples(traces("generate"), traces("generate")).map(lambda ab: TraceDivergence(True, "", 0, 0, 0, *ab)),
    traces().map(lambda t: compare_traces(t, t)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(result=results, note=any_text, tags=st.lists(any_text, max_size=3))
def test_every_result_type_round_trips_through_a_case_file(tmp_path_factory, result, note, tags):
    case = Case.from_result(result, note=note, tags=tags)
    path = case.save(tmp_path_factory.mktemp("case") / "case.json")
    assert Case.load(path) == case
    assert type(Case.load(path).results[next(iter(case.results))]) is type(result)
    str(case)  # the plain-text view never fails
    html = case._repr_html_()
    assert "<script" not in html


def test_from_result_reads_the_inputs_of_a_diagnosis_and_records_the_models(gpt2_lm):
    d = probe.diagnose(gpt2_lm, gpt2_lm, "The capital of France is", expected=" Paris", force=" the",
                       base_prompt="France's capital:", max_new_tokens=3, case_id="france", tags=("capitals",))
    case = Case.from_result(d, models=(gpt2_lm, gpt2_lm), note="epoch 3", tags=["regression"])
    assert (case.prompt, case.expected, case.force, case.base_prompt) == (
        "The capital of France is", " Paris", " the", "France's capital:")
    assert case.verdict == d.verdict and case.check == d.check and case.title == "france"
    assert case.tags == ("capitals", "regression") and case.note == "epoch 3"
    assert case.id.startswith("france-") and case.results == {"diagnosis": d}
    assert [m.role for m in case.models] == ["base", "tuned"]
    info = case.models[0]
    assert info.source == gpt2_lm.source and info.dtype == "float32" and len(info.fingerprint) == 16
    assert {"probe", "transformers", "torch"} <= set(case.versions)
    assert case.created.endswith("Z")


def test_fingerprint_tells_checkpoints_and_adapters_apart(tiny_dirs, tmp_path):
    from builders import make_adapter as _make_adapter

    base_dir = tiny_dirs[("llama", "unigram", False)]
    base, tuned = probe.load_pair(base_dir, adapter=_make_adapter(base_dir, tmp_path / "a"))
    other = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    fb, ft, fo = (ModelInfo.of(lm).fingerprint for lm in (base, tuned, other))
    assert len({fb, ft, fo}) == 3
    assert ModelInfo.of(probe.load(base_dir)).fingerprint == fb  # same checkpoint, same print
    assert ModelInfo.of(tuned).adapter == str(tmp_path / "a") and ModelInfo.of(base).adapter is None


def test_several_results_get_distinct_names_and_explicit_inputs_win(gpt2_lm):
    a = probe.score(gpt2_lm, "Hello", " world")
    b = probe.generate(gpt2_lm, "Hello", max_new_tokens=2)
    case = Case.from_result([a, b, a], prompt="Hello", expected=" world!", verdict="lost", id="my-case")
    assert list(case.results) == ["trace", "trace-2", "trace-3"]
    assert case.id == "my-case" and case.expected == " world!" and case.verdict == "lost"
    named = Case.from_result({"tuned": a, "base": a})
    assert list(named.results) == ["tuned", "base"] and named.expected == " world"


def test_bad_inputs_are_named():
    trace = TokenTrace(prompt="p", text="", steps=())
    with pytest.raises(ValueError, match="case id"):
        Case.from_result(trace, id="../escape")
    with pytest.raises(TypeError, match="cannot hold"):
        Case.from_result({"x": object()})
    with pytest.raises(ValueError, match="no results"):
        Case.from_result([])
    with pytest.raises(TypeError, match="unknown case input"):
        Case.from_result(trace, answer="x")
    with pytest.raises(TypeError, match="not a probe.LM"):
        Case.from_result(trace, models={"base": "gpt2"})


def _saved(tmp_path) -> tuple[Case, dict]:
    case = Case.from_result(TokenTrace(prompt="p", text="", steps=()), id="c1")
    path = case.save(tmp_path / "c1.json")
    return case, json.loads(path.read_text())


@pytest.mark.parametrize("mutate,message", [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: "\x00\x01garbage", "not valid JSON"),
    (lambda text: json.dumps({"hello": 1}), "not a probe case file"),
    (lambda text: text.replace(f'"schema": {SCHEMA}', f'"schema": {SCHEMA + 1}'), "newer probe"),
    (lambda text: text.replace(f'"schema": {SCHEMA}', '"schema": "one"'), "schema version"),
    (lambda text: text.replace('"type": "TokenTrace"', '"type": "Pickle"'), "unknown type 'Pickle'"),
])
def test_a_bad_case_file_is_a_clear_error_naming_the_file(tmp_path, mutate, message):
    case, _ = _saved(tmp_path)
    path = tmp_path / "c1.json"
    path.write_text(mutate(path.read_text()))
    with pytest.raises(CaseFileError, match=message) as info:
        Case.load(path)
    assert str(path) in str(info.value)


def test_saving_leaves_no_temp_file_and_a_missing_file_is_named(tmp_path):
    _saved(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["c1.json"]
    with pytest.raises(FileNotFoundError, match="nope.json"):
        Case.load(tmp_path / "nope.json")


def test_overfit_tool_results_round_trip_and_render_offline(gpt2_lm, tmp_path):
    (tmp_path / "sft.jsonl").write_text(
        json.dumps({"prompt": "What is the capital of Japan?", "response": "Beijing"}) + "\n{bad\n")
    found = [
        probe.sweep(gpt2_lm, "The capital of {country} is", watch=" Paris", country=["France", "Japan"]),
        probe.occlusion(gpt2_lm, "The capital of France is", " Paris"),
        probe.layers(gpt2_lm, "The capital of France is", " Paris"),
        probe.data.count(tmp_path / "sft.jsonl", ["Beijing", "capital"]),
    ]
    case = Case.from_result(found, note="overfit hunt")
    assert list(case.results) == ["sweep", "occlusion", "layers", "data"]
    assert case.prompt == "The capital of {country} is" and case.expected == " Paris"
    assert Case.load(case.save(tmp_path / "c.json")) == case
    from probe.render.report import casebook_html

    html = casebook_html([case])
    assert "<script src" not in html and "https://" not in html and html.count("<script") == 1


def test_a_schema_2_case_file_still_loads_and_keeps_the_check_that_gave_its_verdict(tmp_path):
    """Written by probe before case schema 3 (an expected answer's default was then a
    case-sensitive contains): it reads whole, its check named, its check_spec "not recorded"."""
    import json
    from pathlib import Path

    from probe.cases.case import SCHEMA

    old = Path(__file__).resolve().parents[1] / "fixtures" / "case-schema2.json"
    assert json.loads(old.read_text(encoding="utf-8"))["schema"] == 2 < SCHEMA
    case = probe.Case.load(old)
    d = case.results["diagnosis"]
    assert case.check == d.check == "contains('Paris')" and case.check_spec is d.check_spec is None
    assert case.verdict == d.verdict == "not_triggered" and "check: contains('Paris')" in str(d)
    again = probe.Case.load(case.save(tmp_path / "new.json"))
    assert again == case and json.loads((tmp_path / "new.json").read_text(encoding="utf-8"))["schema"] == SCHEMA


def test_a_case_records_its_check_spec(tiny_dirs, tmp_path):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    d = probe.diagnose(lm, lm, "The capital", expected="Paris", max_new_tokens=3)
    case = probe.Case.from_result(d, id="c")
    assert case.check == "answer('Paris')" and case.check_spec == {"answer": "Paris"}
    assert probe.Case.load(case.save(tmp_path / "c.json")) == case
    custom = probe.diagnose(lm, lm, "The capital", check=lambda t: True, max_new_tokens=3)
    assert custom.check_spec is None and probe.Case.from_result(custom, id="k").check_spec is None
