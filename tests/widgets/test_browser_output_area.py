"""A hover card at the very bottom of a notebook output is drawn whole: in Chromium, a strip
placed last in an output area laid out by JupyterLab's own CSS (``.jp-OutputArea`` scrolls,
``.jp-OutputArea-child`` hides its overflow, ``.jp-OutputArea-output`` scrolls), the card of its
last token lies inside the viewport and no container clips it. The same page without probe's
``:has()`` rule is the control: there the card is clipped, so the test sees the fix work."""

import sys
from pathlib import Path

import pytest

from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.render.strip import trace_body
from probe.render.style import ROOT, STYLE
from test_browser import ARTIFACTS, _require_browser, browser  # noqa: F401

pytestmark = pytest.mark.slow

VIEW = (800, 700)


def lab_css() -> str:
    """JupyterLab's stylesheet as nbconvert's lab template ships it (jupyter_server needs
    nbconvert, so the notebook extra has it): the output area's real overflow rules."""
    css = Path(sys.prefix) / "share" / "jupyter" / "nbconvert" / "templates" / "lab" / "static" / "index.css"
    text = css.read_text(encoding="utf-8")
    for rule in (".jp-OutputArea {", ".jp-OutputArea-child {", ".jp-OutputArea-output {"):
        assert rule in text, rule  # the rules this page is about
    return text


def _strip() -> str:
    """A strip whose tokens carry tall hover cards (ten alternatives each)."""
    alts = tuple(Alternative(100 + k, f" alt{k}", 0.05, -3.0) for k in range(10))
    steps, start = [], 0
    for i, text in enumerate([" The", " capital", " is", " Beijing", "."]):
        steps.append(TokenStep(index=i, id=10 + i, text=text, start=start, end=start + len(text), logprob=-0.2,
                               prob=0.8, rank=1, entropy=0.9, top=alts))
        start += len(text)
    trace = TokenTrace(prompt="q", text="".join(s.text for s in steps), steps=tuple(steps), model="tuned")
    return f'<div class="{ROOT}">{trace_body(trace)}</div>'


def _page(style: str) -> str:
    """A notebook as JupyterLab builds it: a scrolling notebook, the cell's output area with the
    strip as the last thing in it, then the next cell."""
    return (f"<!doctype html><html><head><meta charset=utf-8><style>{lab_css()}</style>"
            "<style>html,body{margin:0;height:100%}#nb{height:100vh;overflow:auto}</style></head>"
            '<body class="jp-ThemeLight"><div id="nb" class="jp-Notebook">'
            '<div class="jp-Cell" style="height:500px">earlier cell</div>'
            '<div class="jp-Cell jp-CodeCell"><div class="jp-Cell-outputWrapper"><div class="jp-Cell-outputArea '
            'jp-OutputArea"><div class="jp-OutputArea-child"><div class="jp-OutputPrompt jp-OutputArea-prompt">'
            '[1]:</div><div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output" '
            f'id="out">{style}{_strip()}</div></div></div></div></div>'
            '<div class="jp-Cell" style="height:900px">next cell</div></div></body></html>')


# The card's corners and bottom middle, each the topmost element there (clipped: something else).
SEEN = """t => { const r = t.getBoundingClientRect();
  const pts = [[r.left + 3, r.top + 3], [r.right - 3, r.top + 3], [r.left + 3, r.bottom - 3],
               [r.right - 3, r.bottom - 3], [(r.left + r.right) / 2, r.bottom - 3]];
  return pts.map(([x, y]) => { const e = document.elementFromPoint(x, y); return !!e && t.contains(e); }); }"""


def _hover_last(browser, tmp_path, style: str, name: str):  # noqa: F811
    path = tmp_path / f"{name}.html"
    path.write_text(_page(style), encoding="utf-8")
    page = browser.new_page(viewport={"width": VIEW[0], "height": VIEW[1]})
    page.goto(path.as_uri())
    # the output's bottom edge a third of the way down the viewport: room below for the card
    page.evaluate("""() => { const nb = document.getElementById('nb'), out = document.getElementById('out');
        nb.scrollTop += out.getBoundingClientRect().bottom - 230; }""")
    tok = page.locator("#out .probe-tok").last
    tok.hover()
    tip = tok.locator(".probe-tip")
    out_box = page.locator("#out").bounding_box()
    return page, tip, out_box


def test_a_hover_card_at_the_bottom_of_a_jupyterlab_output_area_is_not_clipped(browser, tmp_path):  # noqa: F811
    page, tip, out_box = _hover_last(browser, tmp_path, STYLE, "with-rule")
    assert tip.is_visible()
    box = tip.bounding_box()
    assert box["y"] + box["height"] > out_box["y"] + out_box["height"] + 20  # it hangs below the output area
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= VIEW[0], box
    assert box["y"] + box["height"] <= VIEW[1], box  # inside the viewport
    assert all(tip.evaluate(SEEN)), "the hover card is clipped by a container"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "output-area-bottom-hover.png"))
    # a cell whose outputs the user chose to scroll keeps scrolling (JupyterLab's rule for it is
    # more specific than probe's)
    overflow = page.evaluate("""() => { const area = document.querySelector('.jp-Cell-outputArea');
        area.closest('.jp-CodeCell').classList.add('jp-mod-outputsScrolled');
        return getComputedStyle(area).overflowY; }""")
    assert overflow == "auto"
    page.close()


def test_without_the_has_rule_jupyterlabs_output_area_clips_the_card(browser, tmp_path):  # noqa: F811
    # the control: the rule is what keeps the card whole on this page
    rule = next(r for r in STYLE.split("}") if ":has(.probe-tok)" in r) + "}"
    assert rule in STYLE
    page, tip, _ = _hover_last(browser, tmp_path, STYLE.replace(rule, ""), "without-rule")
    assert tip.is_visible()
    assert not all(tip.evaluate(SEEN)), "the page does not clip: the test would pass without the fix"
    page.close()
