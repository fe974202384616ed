"""The result-type registry: a new type is one class and one register() call, nothing else."""

import json
from dataclasses import dataclass
from html import escape

import pytest

import probe
from builders import fake_case
from probe.core import registry
from probe.render.report import casebook_html
from probe.render.style import STYLE, styled
from probe.render.text import case_text

HOSTILE = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class Shift:  # stands for a type another branch adds (e.g. a corpus shift map)
    prompt: str
    share: float

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "share": self.share}

    @classmethod
    def from_dict(cls, d: dict) -> "Shift":
        return cls(str(d["prompt"]), float(d["share"]))

    def __str__(self) -> str:
        return f"Shift of {self.prompt!r}: {self.share:.2f}"

    def _repr_html_(self) -> str:
        return styled(f'<div class="test-shift">{escape(self.prompt)}: {self.share:.2f}</div>')


@pytest.fixture
def shift_registered():
    registry.register(Shift, name="TestShift", default_name="shift", inputs=lambda r: {"prompt": r.prompt},
                      headline=lambda r: registry.Headline(
                          where=registry.Parting("expected", True, " Paris", " Beijing")))
    yield Shift
    registry.unregister(Shift)


def test_a_new_result_type_round_trips_through_a_case_file_and_shows_in_a_report(shift_registered, tmp_path):
    case = probe.Case.from_result(Shift(HOSTILE, 0.25), id="s1", note="new type")
    assert list(case.results) == ["shift"] and case.prompt == HOSTILE  # default name, inputs
    path = case.save(tmp_path / "s1.json")
    assert json.loads(path.read_text())["case"]["results"]["shift"]["type"] == "TestShift"
    assert probe.Case.load(path) == case
    html = casebook_html([case, fake_case("d1", "lost")])
    assert '<div class="test-shift">&lt;img src=x onerror=alert(1)&gt;: 0.25</div>' in html
    assert html.count("<style>") == 1 and html.count(STYLE[7:60]) == 1  # one style block per page
    assert "tuned writes &#x27; Beijing&#x27; where &#x27; Paris&#x27; was expected" in html  # its headline, one line
    assert "shift (TestShift)" in case_text(case)


def test_an_unregistered_type_is_refused_by_name_and_its_files_are_reported(shift_registered, tmp_path):
    path = probe.Case.from_result(Shift("p", 0.5), id="s2").save(tmp_path / "s2.json")
    registry.unregister(Shift)
    with pytest.raises(TypeError, match="Shift is not a registered result type"):
        probe.Case.from_result(Shift("p", 0.5))
    with pytest.raises(probe.CaseFileError, match="unknown type 'TestShift'"):
        probe.Case.load(path)


def test_a_saved_name_cannot_be_taken_twice(shift_registered):
    @dataclass(frozen=True)
    class Other:
        x: int = 0

    registry.result_types()  # the built-in types are registered on first use
    with pytest.raises(ValueError, match="'TestShift' is taken"):
        registry.register(Other, name="TestShift")
    with pytest.raises(ValueError, match="'Diagnosis' is taken"):
        registry.register(Other, name="Diagnosis")


def test_built_in_types_keep_the_names_old_case_files_use():
    names = {t.name: t.default_name for t in registry.result_types()}
    old = {"TokenTrace": "trace", "Divergence": "divergence", "TraceDivergence": "divergence",
                     "Comparison": "comparison", "Diagnosis": "diagnosis", "Sweep": "sweep",
                     "Occlusion": "occlusion", "LayerLens": "layers", "DataCounts": "data"}
    assert {k: names.get(k) for k in old} == old  # later types add names; these never change
    assert names["Shift"] == "shift" and names["Regression"] == "regression"
    assert all(registry.named(t.name).cls.__name__ == t.name for t in registry.result_types())


def test_renderers_import_no_computation():
    """render/ reaches results through the registry: it never imports scoring, generation,
    divergence or any other module that computes (the old cycle results -> render ->
    divergence -> scoring -> results)."""
    import ast
    from pathlib import Path

    allowed = {"probe.core.registry", "probe.core.vocab"}
    render = Path(probe.__file__).parent / "render"
    for path in sorted(render.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..x import y
                assert f"probe.{node.module}" in allowed, f"{path.name} imports probe.{node.module}"
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert not any(n.startswith("probe") for n in names), f"{path.name} imports {names}"
    assert registry.type_of(fake_case("x").results["diagnosis"]).headline is not None
