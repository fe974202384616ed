"""The live DiagnoseLab with "which examples?" in a real JupyterLab (what `make screenshots` shoots):
the widget shows, the channel chart draws one bar per channel, its text reads at a contrast of
at least 4.5:1 in the light and the dark theme, and the screenshots are written."""

import pytest

import widget_gallery
from test_browser import _require_browser
from test_browser_views import CONTRAST

pytestmark = pytest.mark.slow


def test_diagnose_lab_which_examples_in_jupyterlab_light_and_dark(tmp_path):
    _require_browser()
    channels = sorted({r["source"] for r in widget_gallery.RECORDS})
    seen = {}

    def check(page, theme):
        panel = page.locator(".probe-attribution-panel").first
        ticks = panel.locator(".js-plotly-plot .xtick text").evaluate_all("els => els.map(e => e.textContent)")  # SVG
        assert sorted(ticks) == channels
        assert "share of positive gradient influence" in panel.locator(".js-plotly-plot .ytitle").text_content()
        assert panel.locator(".widget-select option").count() == len(widget_gallery.RECORDS)  # keep=10 > 9
        found = page.evaluate(CONTRAST)
        in_panel = [f for f in found if "probe-tok" in str(f["cls"]) or "probe-head" in str(f["cls"])]
        assert len(in_panel) >= 10  # the check saw the strips and heads
        low = [f for f in found if f["ratio"] < 4.5]
        assert not low, f"{theme}: {low[:5]}"
        seen[theme] = True

    shots = widget_gallery.screenshots(tmp_path, cells={"diagnose-lab": widget_gallery.CELLS["diagnose-lab"]},
                                       check=check)
    assert seen == {"light": True, "dark": True}
    assert sorted(p.name for p in shots) == sorted(f"diagnose-lab-{kind}-{theme}.png" for theme in ("light", "dark")
                                                   for kind in ("widget", "which-examples"))
    assert all(p.stat().st_size > 10_000 for p in shots)
