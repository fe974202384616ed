import re
from types import SimpleNamespace

import pytest

from probe.overfit.sweep import sweep
from probe.widgets.sweep_grid import SweepGrid, split_values


def _click(grid, x, y=None):
    points = SimpleNamespace(point_inds=[[y, x]] if y is not None else [x], xs=[x], ys=[y])
    grid._on_click(grid.chart.data[0], points)


def test_sweep_grid_runs_and_shows_heatmap_summary_table(gpt2_lm):
    g = SweepGrid(gpt2_lm, "What is the {relation} of {country}?", " Paris", background=False,
                  relation=["capital", "language"], country=["Japan", "France", "China"])
    assert list(g.slot_inputs) == ["relation", "country"]
    assert g.slot_inputs["country"].value == "Japan, France, China"
    g.run_button.click()
    assert g.runner.error is None, g.runner.error
    s = g.result
    assert s == sweep(gpt2_lm, "What is the {relation} of {country}?", " Paris",
                      relation=["capital", "language"], country=["Japan", "France", "China"])
    heat = g.chart.data[0]
    assert heat.type == "heatmap" and len(heat.z) == 3 and len(heat.z[0]) == 2
    assert heat.z[1][0] == pytest.approx(s.row(relation="capital", country="France").prob)
    assert "done" in g.status.value and "greedily" in g.summary.value
    assert g.table.value.count("<tr>") == 1 + 6
    # Clicking a cell shows that prompt's top-k next tokens.
    _click(g, 1, 2)
    row = s.row(relation="language", country="China")
    assert "What is the language of China?" in g.detail.value
    assert g.detail.value.count("<tr>") == 1 + len(row.top)


def test_axes_can_be_switched_and_one_slot_gives_bars(gpt2_lm):
    g = SweepGrid(gpt2_lm, "The {a} of {b} in {c} is", " red", background=False,
                  a=["capital", "colour"], b=["sky", "sea"], c=["May", "June", "July"])
    g.run_button.click()
    assert "mean over c" in g.chart.layout.title.text
    g.x.value, g.y.value = "c", "(none)"
    assert g.chart.data[0].type == "bar" and len(g.chart.data[0].y) == 3
    assert "mean over a, b" in g.chart.layout.title.text
    _click(g, 0)  # a bar cell averages 4 prompts: all of them are listed
    assert g.detail.value.count("in May is") == 4


def test_template_edits_add_and_drop_slot_boxes_keeping_typed_values(gpt2_lm):
    g = SweepGrid(gpt2_lm, background=False, country=["Japan"])
    assert list(g.slot_inputs) == ["country"]
    g.slot_inputs["country"].value = "Japan, Chad"
    g.template.value = "What is the {relation} of {country}?"
    assert list(g.slot_inputs) == ["relation", "country"]
    assert g.slot_inputs["country"].value == "Japan, Chad" and g.slot_inputs["relation"].value == ""
    g.template.value = "What is {"  # mid-edit: the boxes stay, the problem is said
    assert "template" in g.status.value and list(g.slot_inputs) == ["relation", "country"]


def test_errors_become_messages(gpt2_lm):
    g = SweepGrid(gpt2_lm, "What is the capital of {country}?", " Paris", background=False)
    g.run_button.click()  # no values typed
    assert "failed" in g.status.value and "slot &#x27;country&#x27; has no values" in g.status.value
    assert not g.run_button.disabled
    g.slot_inputs["country"].value = "Japan"
    g.watch.value = ""
    g.run_button.click()
    assert "watch is empty" in g.status.value
    g.watch.value = " Tokyo"
    g.run_button.click()
    assert "done" in g.status.value and len(g.result.rows) == 1


def test_hostile_values_are_escaped(gpt2_lm):
    g = SweepGrid(gpt2_lm, "Say {x}", " ok", background=False, x=["<img src=x>", "<b>hi</b>"])
    g.run_button.click()
    for html in (g.table.value, g.summary.value, g.detail.value):
        assert "<img" not in html and "<b>hi" not in html
    assert "&lt;img src=x&gt;" in g.table.value


def test_comma_separated_values():
    assert split_values(" Japan,France ,, China\\n,") == ["Japan", "France", "China"]


def test_runs_in_the_background(gpt2_lm):
    g = SweepGrid(gpt2_lm, "Capital of {c}?", " Paris", c=["France", "Japan"])
    g.run_button.click()
    g.runner.wait(60)
    assert g.runner.error is None and len(g.result.rows) == 2 and re.search("done", g.status.value)
