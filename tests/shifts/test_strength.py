"""probe.strength: the LoRA's contribution scaled by lambda, against the base and tuned models
(exact at 0 and 1) and against a brute-force merge of the adapter's own weights in between."""

import json

import pytest
import torch

import probe
from probe.shifts import strength as strength_module
from builders import EVIL, json_roundtrip


@pytest.fixture(scope="module")
def lora_dirs(tiny_dirs, tmp_path_factory):
    from builders import make_adapter

    base_dir = tiny_dirs[("llama", "unigram", True)]
    return base_dir, make_adapter(base_dir, tmp_path_factory.mktemp("a"))


@pytest.fixture(scope="module")
def lora_pair(lora_dirs):
    return probe.load_pair(lora_dirs[0], adapter=lora_dirs[1])


PROMPT = "The capital of France is"


def _scalings(tuned):
    from peft.tuners.lora import LoraLayer

    return [dict(m.scaling) for m in tuned.model.modules() if isinstance(m, LoraLayer)]


def test_lambda_0_is_the_base_and_lambda_1_the_tuned_model_to_the_bit(lora_pair):
    base, tuned = lora_pair
    base_text = probe.generate(base, PROMPT, max_new_tokens=6).text
    tuned_text = probe.generate(tuned, PROMPT, max_new_tokens=6).text
    assert base_text != tuned_text  # the adapter changes the answer: the flip is there to find
    case = {"id": "fr", "prompt": PROMPT, "expected": base_text, "check": {"equals": base_text}}
    s = probe.strength(lora_pair, case, max_new_tokens=6)
    assert [p.scale for p in s.points] == [0, 0.25, 0.5, 0.75, 1, 1.25]
    at0, at1 = s.point(0), s.point(1)
    # lambda 0 adds 0 * BA (an exact zero), lambda 1 multiplies scaling by 1.0: bit-equal runs.
    assert at0.logp_expected == probe.score(base, PROMPT, base_text).total_logprob
    assert at1.logp_expected == probe.score(tuned, PROMPT, base_text).total_logprob
    assert at0.answer == base_text and at0.passed and at0.verdict == "ok"
    assert at1.answer == tuned_text and not at1.passed
    d = probe.diagnose(base, tuned, PROMPT, check={"equals": base_text}, expected=base_text, max_new_tokens=6)
    assert at1.verdict == d.verdict == "lost" and at1.answer == d.run("tuned").text
    assert s.wrong == tuned_text.split("\n")[0].rstrip()  # the tuned answer's first line, by default
    assert at1.logp_wrong == probe.score(tuned, PROMPT, s.wrong).total_logprob
    a, b = s.flip
    assert s.point(a).passed and not s.point(b).passed and 0 <= a < b <= 1
    assert all(p.passed for p in s.points if p.scale <= a)  # the first change from lambda's low end


def test_lambda_in_between_equals_a_brute_force_merge_of_the_adapter_weights(lora_pair, lora_dirs):
    """W + lambda * (alpha / r) * B @ A merged by hand from adapter_model.safetensors, on a
    plain transformers model: the same log-probabilities within float32 rounding. Measured:
    at most 1.5e-6 nats apart over lambda 0.5, 1, 1.25 and two answers (a merged weight rounds
    once, LoRA at run time adds its product to the rounded base output); 1e-5 is the bound."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir, adapter_dir = lora_dirs
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    for lam in (0.5, 1.25):
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
        modules = dict(model.named_modules())
        for key, A in weights.items():
            if ".lora_A." in key:
                B = weights[key.replace("lora_A", "lora_B")]
                path = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
                with torch.no_grad():
                    modules[path].weight += (lam * config["lora_alpha"] / config["r"] * (B.double() @ A.double())).float()
        ref = probe.load((model, AutoTokenizer.from_pretrained(base_dir)))
        s = probe.strength(lora_pair, {"prompt": PROMPT, "expected": " Paris"}, scales=(lam,), wrong=" Rome",
                           max_new_tokens=4)
        (p,) = s.points
        assert abs(p.logp_expected - probe.score(ref, PROMPT, " Paris").total_logprob) < 1e-5
        assert abs(p.logp_wrong - probe.score(ref, PROMPT, " Rome").total_logprob) < 1e-5
        assert p.answer == probe.generate(ref, PROMPT, max_new_tokens=4).text


def test_the_adapter_is_restored_even_when_a_run_fails(lora_pair, monkeypatch):
    base, tuned = lora_pair
    before = _scalings(tuned)
    logp = probe.score(tuned, PROMPT, " Paris").total_logprob
    seen = []

    def failing(*args, **kwargs):
        seen.append(_scalings(tuned))
        raise RuntimeError("boom")

    monkeypatch.setattr(strength_module, "generate", failing)
    with pytest.raises(RuntimeError, match="boom"):
        probe.strength(lora_pair, {"prompt": PROMPT, "expected": " Paris"}, scales=(0.5,), wrong=" Rome")
    assert seen and seen[0] != before  # it was scaled while running...
    assert all(v == 0.5 * before[0]["default"] for v in seen[0][0].values())
    assert _scalings(tuned) == before  # ...and is back as it was
    assert probe.score(tuned, PROMPT, " Paris").total_logprob == logp


def test_strength_refuses_what_does_not_scale(lora_pair, lora_dirs, tiny_dirs):
    base, tuned = lora_pair
    with pytest.raises(ValueError, match="LoRA pair"):
        probe.strength((tuned, tuned), {"prompt": PROMPT, "expected": " Paris"})
    plain = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    with pytest.raises(ValueError, match="LoRA pair"):
        probe.strength((plain, plain), {"prompt": PROMPT, "expected": " Paris"})
    with pytest.raises(ValueError, match="finite"):
        probe.strength(lora_pair, {"prompt": PROMPT, "expected": " Paris"}, scales=(0, float("nan")))
    with pytest.raises(ValueError, match="needs 'expected'"):
        probe.strength(lora_pair, {"prompt": PROMPT, "check": "json_valid"})


def test_strength_refuses_a_dora_adapter(tmp_path, lora_dirs):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = lora_dirs[0]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"], use_dora=True,
                                                      init_lora_weights=False))
    model.save_pretrained(tmp_path / "dora")
    pair = probe.load_pair(base_dir, adapter=tmp_path / "dora")
    with pytest.raises(ValueError, match="DoRA"):
        probe.strength(pair, {"prompt": PROMPT, "expected": " Paris"}, scales=(0,))


def test_a_strength_round_trips_renders_escaped_and_goes_into_a_case(lora_pair, tmp_path):
    s = probe.strength(lora_pair, {"id": "evil", "prompt": PROMPT, "expected": EVIL}, scales=(0, 1),
                       wrong=EVIL + "!", max_new_tokens=3)
    assert json_roundtrip(s) == s and s.check == f"answer({EVIL!r})" and s.check_spec == {"answer": EVIL}
    html = s._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<svg" in html and "lambda" in html
    assert "P(expected" in html and "P(wrong" in html  # the legend
    text = str(s)
    assert "P(expected)" in text and ("flips between" in text or "does not flip" in text)
    case = probe.Case.from_result(s, id="evil")
    assert case.expected == EVIL and case.check_spec == {"answer": EVIL}
    assert probe.Case.load(case.save(tmp_path / "c.json")).results["strength"] == s


def test_the_flip_is_drawn_and_crossing_interpolated():
    from probe.render.strength import strength_svg
    from probe.shifts.strength import Strength, StrengthPoint

    pts = tuple(StrengthPoint(x, le, lw, "a", ok, "r", "ok" if ok else "lost")
                for x, le, lw, ok in ((0.0, -1.0, -5.0, True), (0.5, -2.0, -2.5, True),
                                      (1.0, -4.0, -1.0, False)))
    s = Strength(PROMPT, "Tokyo", "Beijing", "answer('Tokyo')", pts)
    assert s.flip == (0.5, 1.0)
    # margins +0.5 at 0.5 and -3 at 1: zero at 0.5 + 0.5 * 0.5 / 3.5
    assert s.crossing == pytest.approx(0.5 + 0.5 * 0.5 / 3.5)
    svg = strength_svg(s)
    assert svg.count("<polyline") == 2 and "stroke-dasharray" in svg and svg.count("<circle") == 6
    assert "flips between lambda 0.5 (right) and 1 (wrong)" in str(s)
    never = Strength(PROMPT, "Tokyo", None, "c", pts[:2])
    assert never.flip is None and never.crossing is None and "does not flip" in str(never)


def test_strength_many_runs_a_cell_of_saved_cases_and_names_the_bad_ones(lora_pair, tmp_path):
    base, tuned = lora_pair
    d = probe.diagnose(base, tuned, PROMPT, expected=" Paris", max_new_tokens=3, case_id="fr")
    book = probe.Casebook(tmp_path / "book")
    book.add(probe.Case.from_result(d, id="fr"))
    cell = book.filter(verdict=d.verdict)
    many = probe.strength_many(lora_pair, [*cell, {"id": "bad", "prompt": PROMPT, "check": "json_valid"}],
                               scales=(0, 1), max_new_tokens=3)
    assert [s.case_id for s in many.items] == ["fr"] and len(many.errors) == 1 and "bad" in many.errors[0]
    assert json_roundtrip(many) == many and "fr" in str(many) and "error: case bad" in str(many)
    assert many.items[0].check == "answer(' Paris')"


def test_the_verdict_per_lambda_is_diagnoses_at_0_and_1_forced_runs_included(lora_pair):
    """A check only a forced answer passes: not_triggered, decided by the forced run."""
    base, tuned = lora_pair
    case = {"id": "f", "prompt": PROMPT, "expected": "Paris", "force": "Paris", "check": {"regex": "^Paris"}}
    s = probe.strength(lora_pair, case, scales=(0, 1), max_new_tokens=4)
    for scale, model in ((0, base), (1, tuned)):
        d = probe.diagnose(base, model, PROMPT, expected="Paris", force="Paris", check={"regex": "^Paris"},
                           max_new_tokens=4)
        assert s.point(scale).verdict == d.verdict and s.point(scale).answer == d.run("tuned").text
    assert {p.verdict for p in s.points} == {"not_triggered"}


def test_a_strength_is_a_report_section(lora_pair, tmp_path):
    from probe.render.report import casebook_html

    s = probe.strength(lora_pair, {"id": "sec", "prompt": PROMPT, "expected": EVIL}, scales=(0, 1),
                       wrong="x", max_new_tokens=2)
    page = casebook_html([], title="t", sections=[s, probe.Strengths((s,), ("case y: " + EVIL,))])
    assert 'id="probe-strength"' in page and 'id="probe-strengths"' in page
    assert "<script>alert" not in page and page.count("<svg") >= 2


def test_the_demos_strength_section_prints_the_named_case_and_refuses_an_unknown_one(lora_pair, capsys):
    from probe.cli.common import InputError
    from probe.cli.demo import strength_section
    from probe.diagnosis.run import CaseSpec

    specs = [CaseSpec(id="japan-beijing", prompt=PROMPT, expected=" Paris"), CaseSpec(id="j", prompt=PROMPT,
                                                                                      check="json_valid")]
    (curve,) = strength_section(*lora_pair, specs, "japan-beijing", 3)
    assert curve.case_id == "japan-beijing" and str(curve) in capsys.readouterr().out
    assert strength_section(*lora_pair, specs, "", 3) == []
    with pytest.raises(InputError, match="no case 'j' with an expected answer"):
        strength_section(*lora_pair, specs, "j", 3)
