"""Shift / regression views: escaped HTML, offline (no script, no CDN), saved in cases and reports."""

import math

import pytest

import probe
from probe.shifts.regression import Regression, RegressionCase
from probe.render.shift import kl_svg, shift_html, shift_strip, token_table_html
from probe.engine.trace import Alternative
from probe.shifts.map import Gain, PromptShift, Shift, ShiftPosition
from builders import EVIL, EVIL_ATTR, _pos, fake_shift, json_roundtrip

def test_shift_numbers_of_a_hand_built_result():
    s = fake_shift()
    assert s.class_counts == {"unshifted": 1, "marginal": 1, "shifted": 1}
    assert s.shifted_ratio == pytest.approx(1 / 3)
    assert s.kl_by_position() == [(pytest.approx(0.3), 2), (pytest.approx(2.0), 1)]
    top = s.promoted
    assert [(t.text, t.count, t.n_prompts) for t in top] == [(EVIL, 2, 1), (" Be", 2, 2)] or \
        [(t.text, t.count, t.n_prompts) for t in top] == [(" Be", 2, 2), (EVIL, 2, 1)]
    assert sorted(s.token(" Be").at) == [(0, 1), (1, 0)]


def test_views_escape_hostile_token_and_prompt_text():
    s = fake_shift()
    for html in (shift_html(s), shift_strip(s.prompts[0]), token_table_html(s), s._repr_html_()):
        assert "<script>" not in html and "<img" not in html
    html = shift_html(s)
    assert "&lt;script&gt;" in html and "<svg" in html and 'data-kind="shifted"' in html
    assert "http" not in html  # nothing to fetch
    assert "shift" in str(s).lower() and "' Be'" in str(s)


def test_shift_and_regression_live_in_cases_and_the_report(tmp_path):
    s = fake_shift()
    assert json_roundtrip(s) == s
    r = Regression((RegressionCase("c1", EVIL, ("t",), "lost", True, False, EVIL, EVIL_ATTR, "r", "r"),),
                   models={"base": "b", "tuned": "t"})
    book = probe.Casebook(tmp_path / "book")
    case = book.add(probe.Case.from_result([s, r], title=EVIL))
    assert set(case.results) == {"shift", "regression"}
    back = probe.Casebook(tmp_path / "book").get(case.id)
    assert back.results["shift"] == s and back.results["regression"] == r
    page = book.to_html(tmp_path / "r.html", sections=[s, r]).read_text()
    assert page.count('class="probe-corpus"') == 2
    assert "<script>alert" not in page and "<img src=x" not in page
    assert 'href="#probe-rc-c1"' in page  # c1 is not a case of the book: the table's own list
    with pytest.raises(TypeError, match="Shift or a Regression"):
        book.to_html(tmp_path / "x.html", sections=["nope"])


def test_kl_svg_of_an_empty_shift_is_empty():
    assert kl_svg(Shift(())) == ""
