"""Views a newcomer can read, checked in a real browser (Debian Chromium via Playwright): a
legend on every strip and the divergence outlined, MathJax kept out, text contrast >= 4.5:1 in
JupyterLab's light and dark themes (computed from the rendered styles), nothing wider than an
800 px window, the report's filter count = its visible rows = its visible cases, anchors
below the sticky bar, hover cards inside the viewport."""

import os
import stat

import pytest

from probe.render.report import casebook_html
from probe.render.style import ROOT
from test_browser import ARTIFACTS, _require_browser, browser  # noqa: F401
import gallery

pytestmark = pytest.mark.slow

# WCAG 2 contrast of each element's own text against the background it is drawn on (the first
# opaque background among it and its ancestors, rgba text blended over it).
CONTRAST = """() => {
  const rgb = s => { const m = s.match(/[\\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lin = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const lum = c => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const bgOf = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const out = [];
  document.querySelectorAll('.probe-view *, .probe-view').forEach(el => {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') return;
    const bg = bgOf(el), fg0 = rgb(getComputedStyle(el).color);
    const fg = {r: fg0.r * fg0.a + bg.r * (1 - fg0.a), g: fg0.g * fg0.a + bg.g * (1 - fg0.a), b: fg0.b * fg0.a + bg.b * (1 - fg0.a)};
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    out.push({text: el.textContent.trim().slice(0, 40), cls: el.className, ratio: (hi + 0.05) / (lo + 0.05)});
  });
  return out;
}"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    _require_browser()
    return {p.stem: p for p in gallery.write_all(tmp_path_factory.mktemp("gallery"))}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_in_jupyterlab_light_and_dark(browser, pages, theme):
    for name in gallery.views():
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(pages[f"{name}-{theme}"].as_uri())
        found = page.evaluate(CONTRAST)
        assert len(found) >= 5, name  # the check saw the view's text
        low = [f for f in found if f["ratio"] < 4.5]
        assert not low, f"{name} ({theme}): {low[:5]}"
        page.close()


def test_every_strip_has_a_legend_and_every_wrong_run_its_divergence_outlined(browser, pages):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(pages["diagnosis-card-light"].as_uri())
    strips = page.locator(".probe-strip")
    assert strips.count() == 4
    for i in range(strips.count()):
        assert strips.nth(i).locator(":scope > .probe-legend").is_visible()
    marked = page.locator(".probe-strip .probe-tok.probe-div")
    assert marked.count() == 2  # the two tuned runs (wrong); the base runs write ' Paris'
    for i in range(2):
        tok = marked.nth(i)
        assert tok.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
        beside = tok.evaluate("e => e.nextElementSibling.className + '|' + e.nextElementSibling.textContent")
        assert beside.startswith("probe-want|expected ' Paris' p=")
    forced = page.locator(".probe-strip .probe-tok.probe-forced").first
    assert forced.evaluate("e => getComputedStyle(e).fontStyle") == "italic"
    assert "repeating-linear-gradient" in forced.evaluate("e => getComputedStyle(e).backgroundImage")
    page.close()


def test_every_view_root_is_skipped_by_mathjax(browser, pages):
    for name in gallery.views():
        page = browser.new_page()
        page.goto(pages[f"{name}-light"].as_uri())
        roots = page.locator("body > .probe-view")
        assert roots.count() == 1, name
        assert set(ROOT.split()) <= set(roots.first.get_attribute("class").split()), name
        page.close()
    report = browser.new_page()
    report.goto(pages["report"].as_uri())
    assert {"tex2jax_ignore", "mathjax_ignore"} <= set(report.locator("body").get_attribute("class").split())
    report.close()


@pytest.mark.parametrize("name", ["report", "diagnosis-card-light", "verdict-table-light", "case-light"])
def test_nothing_is_wider_than_an_800_px_window(browser, pages, name):
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(pages[name].as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    if name == "report":  # the wide table scrolls in its own container, its numbers on one line
        cell = page.locator(".probe-summary td.probe-num").first
        assert cell.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
        assert page.locator(".probe-summary .probe-what .probe-num", has_text="1.4e-06").count() > 0
    page.close()


def test_report_filter_count_equals_visible_rows_and_cases_and_text_matches_shown_text(browser, pages):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(pages["report"].as_uri())

    def agree():
        n = int(page.locator("#probe-shown").inner_text())
        rows = page.locator("tr[data-case]:visible").count()
        sections = page.locator("section[data-case]:visible").count()
        assert n == rows == sections, (n, rows, sections)
        return n

    assert agree() == 7
    page.locator('input[type=checkbox][value="lost"]').uncheck()
    assert agree() == 1
    page.locator('input[type=checkbox][value="lost"]').check()
    page.fill("#probe-text", "run 3")  # a note, shown in the row and in the section
    assert agree() == 1
    page.fill("#probe-text", "Kyiv")  # shown only in the never-had case's section: row follows
    assert agree() == 1 and page.locator("tr[data-case='ukraine']:visible").count() == 1
    page.fill("#probe-text", "H=1.10")  # only in hover cards (hidden): matches nothing
    assert agree() == 0
    page.fill("#probe-text", "fingerprint")  # shown once at the top, not in any case: nothing
    assert agree() == 0
    page.close()


def test_report_anchors_land_below_the_sticky_bar_and_lead_back_to_top(browser, pages):
    page = browser.new_page(viewport={"width": 800, "height": 700})
    page.goto(pages["report"].as_uri())
    toc = page.locator(".probe-toc a")
    assert toc.count() == 2 and "class" not in toc.first.inner_text().lower()
    page.locator("tr[data-case='capital-4'] a").click()
    page.wait_for_timeout(200)
    bar = page.locator(".probe-filters").bounding_box()
    top = page.locator("#case-capital-4").bounding_box()
    assert top["y"] >= bar["y"] + bar["height"] - 1, (top, bar)  # the heading is not under the bar
    page.locator("#case-capital-4 .probe-top").click()
    page.wait_for_timeout(200)
    assert page.evaluate("window.scrollY") == 0
    page.close()


def test_report_hover_cards_stay_inside_the_viewport(browser, pages):
    page = browser.new_page(viewport={"width": 800, "height": 700})
    page.goto(pages["report"].as_uri())
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    toks = page.locator("section:visible .probe-strip .probe-tok")
    for tok in (toks.last, page.locator("section:visible .probe-want").last.locator("xpath=following-sibling::*[1]")):
        tok.scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        tok.hover()
        tip = tok.locator(".probe-tip")
        assert tip.is_visible()
        box, vw, vh = tip.bounding_box(), 800, 700
        assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= vw and box["y"] + box["height"] <= vh, box
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-hover-800.png"))
    page.close()


def test_the_report_file_is_readable_by_others(tmp_path):
    from builders import fake_case

    import probe

    old = os.umask(0o022)
    try:
        book = probe.Casebook(tmp_path / "book")
        book.add(fake_case("c", "lost"))
        out = book.to_html(tmp_path / "r.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.fixture(scope="module")
def mathjax_lab(tmp_path_factory):
    """JupyterLab with a notebook showing math outside probe (the control: MathJax runs) and
    probe views whose text holds TeX delimiters (a check's regex, a $ in an answer)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from test_browser import serve_lab

    _require_browser()
    root = tmp_path_factory.mktemp("mathjax")
    here = os.path.dirname(os.path.abspath(__file__))
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_code_cell(
        f"import sys; sys.path[:0] = [{here!r}, {os.path.dirname(here)!r}]\n"
        "from IPython.display import HTML, display\nimport gallery\n"
        "from probe.widgets.common import html_view\n"
        "display(HTML('<div id=\"control\">$$x^2$$ and \\\\(y\\\\)</div>'))\n"
        "display(html_view(r'<div class=\"probe-head\">$$z$$ in \\[a\\]</div>'))\n"
        "display(gallery.lost_diagnosis(reason_extra=r' (regex \\[0-9\\]+ and $5 or $6)'))"))  # last: nothing below
    nbformat.write(nb, root / "math.ipynb")
    yield from serve_lab(root, tmp_path_factory)


def test_jupyterlab_typesets_math_but_not_inside_probe_views(browser, mathjax_lab):
    from test_browser import _run_first_cell

    url, token, log = mathjax_lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/lab/tree/math.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _run_first_cell(page)
        page.wait_for_selector("#control mjx-container", timeout=120_000)  # MathJax ran on the page
        page.wait_for_selector(".jp-OutputArea .widget-html-content .probe-view", timeout=60_000)
        page.wait_for_timeout(1500)  # typesetting of later outputs is asynchronous
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "mathjax-jupyterlab-failure.png"), full_page=True)
        raise AssertionError("JupyterLab did not show the outputs; log tail:\n" + log.read_text()[-3000:]) from None
    assert page.locator(".probe-view").count() >= 2  # the card and the widget
    assert page.locator(".probe-view mjx-container, .probe-view .MathJax").count() == 0
    card = page.locator(".jp-OutputArea .probe-card").first.inner_text()
    assert r"(regex \[0-9\]+ and $5 or $6)" in card  # the check's reason, as written
    assert "$$z$$ in \\[a\\]" in page.locator(".widget-html-content .probe-view").first.inner_text()
    # a hover card in a notebook output is not clipped by the output area (which scrolls sideways)
    tok = page.locator(".jp-OutputArea .probe-card .probe-strip .probe-tok").last  # the bottom strip
    tok.scroll_into_view_if_needed()
    tok.hover()
    tip = tok.locator(".probe-tip")
    assert tip.is_visible()
    seen = tip.evaluate("""t => { const r = t.getBoundingClientRect();
        const pts = [[r.left + 3, r.top + 3], [r.right - 3, r.bottom - 3], [r.left + 3, r.bottom - 3]];
        return pts.every(([x, y]) => { const e = document.elementFromPoint(x, y); return !!e && t.contains(e); }); }""")
    assert seen, "the hover card is clipped or covered"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mathjax-jupyterlab.png"), full_page=True)
    page.close()
