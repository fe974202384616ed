"""In a real browser: ShiftExplorer driven in JupyterLab, and the shift report opened offline.

Same rules as tests/test_browser.py (Debian chromium via Playwright; PROBE_REQUIRE_BROWSER=1
turns a missing browser into a failure).
"""

import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import probe
from probe.shifts.regression import Regression, RegressionCase
from probe.render.report import casebook_html
from probe.models.tiny import save_tiny
from test_browser import ARTIFACTS, _require_browser, _run_first_cell, browser, serve_lab  # noqa: F401
from builders import EVIL, EVIL_ATTR, fake_shift

pytestmark = pytest.mark.slow

PROMPTS = ["The capital of France is", "Once upon a time", "def add(a, b):", "x y z"]
SETTINGS = dict(max_new_tokens=5, min_gain=0.0, min_prob=0.0)


def test_shift_report_opens_offline_with_hostile_text_escaped(browser, tmp_path):  # noqa: F811
    s = fake_shift()
    r = Regression((RegressionCase("c1", EVIL, ("t<x>",), "lost", True, False, EVIL, EVIL_ATTR, "r", "r"),
                    RegressionCase("c2", "q", ("t<x>",), "kept", True, True, "a", "b", "r", "r")))
    report = tmp_path / "shift.html"
    report.write_text(casebook_html([], title=EVIL, sections=[s, r]), encoding="utf-8")
    page = browser.new_page()
    requests, dialogs = [], []
    page.on("request", lambda q: requests.append(q.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.as_uri())
    page.wait_for_timeout(300)
    tokens = page.locator("#probe-shift .probe-strip .probe-tok")
    assert tokens.count() == s.n_positions
    shown = tokens.first.evaluate("el => el.firstChild.textContent").replace("\u00b7", " ")
    assert shown == EVIL  # markup shown as text
    tokens.first.hover()
    tip = page.locator("#probe-shift .probe-tip:visible")
    assert tip.count() == 1 and "base top" in tip.inner_text() and EVIL in tip.inner_text()
    assert page.locator("#probe-shift svg.probe-kl").count() == 1
    assert page.locator(".probe-tokens tr[data-token]").count() == len(s.promoted)
    lost = page.locator("#probe-regression tr", has_text="t<x>").locator("td").nth(1)
    lost.locator("summary").click()
    lost.locator("a", has_text="c1").click()
    assert page.evaluate("location.hash") == "#probe-rc-c1"
    assert page.locator("img").count() == 0 and page.locator("script").count() == 1  # the page's own filters
    assert dialogs == [] and all(u.startswith("file://") for u in requests), requests
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "shift-report.png"), full_page=True)
    page.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    a = save_tiny(tmp_path_factory.mktemp("base"), "gpt2", "bpe", seed=0)
    b = save_tiny(tmp_path_factory.mktemp("tuned"), "gpt2", "bpe", seed=1)
    return a, b


@pytest.fixture(scope="module")
def lab(tmp_path_factory, models):
    _require_browser()
    root = tmp_path_factory.mktemp("lab")
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_code_cell(
        "import probe\nfrom probe.widgets import ShiftExplorer\n"
        f"base, tuned = probe.load({str(models[0])!r}), probe.load({str(models[1])!r})\n"
        f"s = probe.shift(base, tuned, {PROMPTS!r}, **{SETTINGS!r})\nShiftExplorer(s)"))
    nbformat.write(nb, root / "shift.ipynb")
    pythonpath = os.pathsep.join([os.path.dirname(os.path.dirname(probe.__file__)), os.environ.get("PYTHONPATH", "")])
    yield from serve_lab(root, tmp_path_factory, {"PYTHONPATH": pythonpath})


def test_shift_explorer_in_jupyterlab_prompt_position_token(browser, lab, models):  # noqa: F811
    url, token, server_log = lab
    s = probe.shift(probe.load(models[0]), probe.load(models[1]), PROMPTS, **SETTINGS)  # what the kernel computes
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{url}/lab/tree/shift.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _run_first_cell(page)
        selects = page.locator(".jp-OutputArea .widget-dropdown select")
        selects.nth(3).wait_for(timeout=300_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "shift-explorer-failure.png"), full_page=True)
        raise AssertionError("the ShiftExplorer did not appear; JupyterLab log tail:\n"
                             + server_log.read_text()[-3000:]) from None
    prompt, position, promoted, go_to = (selects.nth(k) for k in range(4))
    out = page.locator(".jp-OutputArea")
    # pick the third prompt: its answer's tokens appear as a shift strip
    prompt.select_option(index=2)
    strip = out.locator(".probe-strip").first
    page.wait_for_function("n => document.querySelectorAll('.jp-OutputArea .probe-strip .probe-tok[data-prompt=\"2\"]')"
                           ".length === n", arg=len(s.prompts[2].positions), timeout=30_000)
    # pick a position: it is outlined and both models' top-k show
    position.select_option(index=3)
    page.wait_for_selector('.jp-OutputArea .probe-tok.probe-div[data-index="3"]', timeout=30_000)
    detail = out.locator(".probe-position")
    p = s.prompts[2].positions[3]
    assert f"position 3" in detail.inner_text() and f"base rank {p.base_rank}" in detail.inner_text()
    assert detail.locator("tr").count() == 1 + len(p.tuned_top)
    # pick the second promoted token: the prompts where it wins
    promoted.select_option(index=1)
    t = s.promoted[1]
    page.wait_for_function("n => document.querySelectorAll('.jp-OutputArea .probe-wins li').length === n",
                           arg=len(s.where(t.id)), timeout=30_000)
    wins = out.locator(".probe-wins li")
    first_i, first_j, _ = s.where(t.id)[0]
    assert wins.first.get_attribute("data-prompt") == str(first_i)
    # jump to where it wins most: the prompt and position follow
    go_to.select_option(index=1)
    page.wait_for_selector(f'.jp-OutputArea .probe-tok.probe-div[data-prompt="{first_i}"][data-index="{first_j}"]',
                           timeout=30_000)
    strip.locator(".probe-tok").first.hover()
    assert out.locator(".probe-tip:visible").count() == 1
    page.screenshot(path=str(ARTIFACTS / "shift-explorer-jupyterlab.png"), full_page=True)
    page.close()
