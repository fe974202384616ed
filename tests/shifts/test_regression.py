"""The regression table against one probe.generate + check per case and model."""

import pytest

import probe
from probe.diagnosis.run import CaseSpec
from probe.shifts.regression import OUTCOMES, Regression, outcome_of
from builders import fake_diagnosis, json_roundtrip


def test_outcomes_table():
    assert [outcome_of(b, t) for b, t in ((1, 1), (0, 1), (1, 0), (0, 0))] == ["kept", "gained", "lost", "never"]


@pytest.fixture(scope="module")
def lora_pair(tiny_dirs, tmp_path_factory):
    from builders import make_adapter as _make_adapter

    base_dir = tiny_dirs[("llama", "unigram", True)]
    return probe.load_pair(base_dir, adapter=_make_adapter(base_dir, tmp_path_factory.mktemp("a")))


def _specs(base, tuned, prompts, n=5):
    """Checks chosen so that each model passes on some prompts: 'contains its own 2nd token'."""
    specs = []
    for i, p in enumerate(prompts):
        t = probe.generate(tuned, p, max_new_tokens=n).text
        b = probe.generate(base, p, max_new_tokens=n).text
        want = [t[: max(1, len(t) // 2)], b[: max(1, len(b) // 2)]][i % 2]
        specs.append(CaseSpec(id=f"c{i}", prompt=p, check={"contains": want}, tags=(["a", "b"][i % 2], "all-of-them")))
    return specs


PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "x y z", "Hello there"]


def test_suite_counts_match_one_generation_per_case_and_model(lora_pair):
    base, tuned = lora_pair
    specs = _specs(base, tuned, PROMPTS)
    r = probe.regression(base, tuned, specs, max_new_tokens=5, batch_size=2)
    assert [c.id for c in r.cases] == [s.id for s in specs] and r.errors == ()
    assert len({c.outcome for c in r.cases}) >= 2  # the checks split the models
    for s, c in zip(specs, r.cases):
        check = probe.checks.as_check(s.check)
        t = check(probe.generate(tuned, s.prompt, max_new_tokens=5).text).passed
        b = check(probe.generate(base, s.prompt, max_new_tokens=5).text).passed
        assert (c.tuned_passed, c.base_passed, c.outcome) == (t, b, outcome_of(b, t)), s.id
    rows = {row["tag"]: row for row in r.table()}
    assert set(rows) == {"a", "b", "all-of-them", "all"}
    for tag, row in rows.items():
        mine = [c for c in r.cases if tag == "all" or tag in c.tags]
        for o in OUTCOMES:
            assert row[o] == sum(c.outcome == o for c in mine)
            assert r.cell(tag, o) == [c.id for c in mine if c.outcome == o]
        assert row["n"] == len(mine) and row["net"] == row["gained"] - row["lost"]
    assert json_roundtrip(r) == r
    html = r._repr_html_()
    for c in r.cases:
        assert f'href="#probe-rc-{c.id}"' in html and f'id="probe-rc-{c.id}"' in html
    assert "Regression: 5 cases" in str(r)


def test_bare_prompts_need_a_check_and_base_prompt_is_continued(lora_pair):
    base, tuned = lora_pair
    with pytest.raises(ValueError, match="check="):
        probe.regression(base, tuned, ["hi"])
    r = probe.regression(base, tuned, ["hi", "ho"], check=lambda text: True, max_new_tokens=2)
    assert [c.outcome for c in r.cases] == ["kept", "kept"] and r.tags == ["(no tag)"]
    spec = CaseSpec(id="cont", prompt="What is it?", base_prompt="It is", check={"regex": ".*"})
    r = probe.regression(base, tuned, [spec], max_new_tokens=3)
    assert r.cases[0].base_text == probe.generate(base, "It is", max_new_tokens=3, raw=True).text
    bad = probe.regression(base, tuned, [{"prompt": "x"}, CaseSpec(id="z", prompt="y", check="json_valid",
                                                                   adapter="nope")], max_new_tokens=2)
    assert bad.cases == () and len(bad.errors) == 2 and "nope" in bad.errors[1]


def test_from_diagnoses_uses_the_free_runs_and_keeps_errors():
    from probe.diagnosis.run import CaseError

    # fake_diagnosis: the base run passes, the tuned run fails
    d = [fake_diagnosis("x", tags=("geo",)), fake_diagnosis("y", tags=()), CaseError("z", "bad line", 3)]
    r = Regression.from_diagnoses(d)
    assert [c.outcome for c in r.cases] == ["lost", "lost"]
    assert r.cell("geo", "lost") == ["x"] and r.cell("(no tag)", "lost") == ["y"]
    assert r.errors == ("case z: line 3: bad line",)
    assert '<a href="#probe-rc-x">' in r._repr_html_()


def test_from_diagnoses_tells_a_diagnosis_by_its_type_not_its_name():
    class Diagnosis:  # another package's class of the same name is not a probe diagnosis
        def __str__(self):
            return "a foreign object"

    r = Regression.from_diagnoses([fake_diagnosis("x"), Diagnosis()])
    assert [c.id for c in r.cases] == ["x"] and r.errors == ("a foreign object",)
