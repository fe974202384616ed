"""In a real browser: headless Debian Chromium driven by Playwright (never a downloaded browser).

Skipped when chromium or playwright is missing, unless PROBE_REQUIRE_BROWSER=1 (set by .ci/run),
which turns the skip into a failure so CI cannot pass by skipping.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import probe
from probe.render.strip import trace_html
from probe.engine.trace import Alternative, TokenStep, TokenTrace

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("PROBE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("PROBE_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
HOSTILE = "<img src=x onerror=alert(1)>"


def _require_browser():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright for Python (pip install playwright)")
    if missing:
        if os.environ.get("PROBE_REQUIRE_BROWSER") == "1":
            pytest.fail("PROBE_REQUIRE_BROWSER=1 but missing: " + ", ".join(missing))
        pytest.skip("no browser: " + ", ".join(missing))


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_hostile_token_text_shows_as_text_and_runs_nothing(browser, tmp_path):
    step = TokenStep(index=0, id=7, text=HOSTILE, start=0, end=len(HOSTILE), logprob=-0.1, prob=0.9,
                     rank=1, entropy=0.2, top=(Alternative(7, HOSTILE, 0.9, -0.1), Alternative(8, "<b>x", 0.05, -3.0)))
    trace = TokenTrace(prompt=HOSTILE, text=HOSTILE, steps=(step,), model=HOSTILE)
    page_file = tmp_path / "hostile.html"
    page_file.write_text(f"<!doctype html><meta charset=utf-8><body>{trace_html(trace)}</body>", encoding="utf-8")
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(page_file.as_uri())
    page.wait_for_timeout(300)
    token = page.locator(".probe-tok").first
    shown = token.evaluate("el => el.firstChild.textContent").replace("\u00b7", " ")
    assert shown == HOSTILE  # the markup is shown as text
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    token.hover()
    tip = page.locator(".probe-tip").first
    assert tip.is_visible() and "<b>x" in tip.inner_text()
    assert dialogs == []  # nothing ran
    page.close()


def test_report_opens_offline_and_its_filters_work(browser, tmp_path):
    from builders import fake_case

    book = probe.Casebook(tmp_path / "book")
    for i, (verdict, tag) in enumerate([("lost", "capitals"), ("lost", "json"), ("ok", "capitals"),
                                        ("never_had", "math")]):
        book.add(fake_case(f"case-{i}", verdict, tags=(tag,), note=f"note {i} {HOSTILE}"))
    report = book.to_html(tmp_path / "report.html")
    page = browser.new_page()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.as_uri())
    visible = lambda: sorted(page.locator("section:visible").evaluate_all(  # noqa: E731
        "els => els.map(e => e.id)"))
    assert visible() == [f"case-case-{i}" for i in range(4)]
    page.locator('input[type=checkbox][value="lost"]').uncheck()
    assert visible() == ["case-case-2", "case-case-3"] and page.locator("#probe-shown").inner_text() == "2"
    page.select_option("#probe-tag", "capitals")
    assert visible() == ["case-case-2"]
    page.locator('input[type=checkbox][value="lost"]').check()
    assert visible() == ["case-case-0", "case-case-2"]
    page.fill("#probe-text", "note 0")
    assert visible() == ["case-case-0"]
    assert page.locator("tr[data-verdict]:visible").count() == 1  # the summary table follows
    page.locator("section:visible .probe-tok").first.hover()
    assert page.locator("section:visible .probe-tip:visible").count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "casebook-report.png"), full_page=False)
    assert all(u.startswith("file://") for u in requests), requests  # nothing fetched from anywhere
    assert page.locator("img").count() == 0 and dialogs == []
    page.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_lab(root, tmp_path_factory, env_extra=None):
    """Start JupyterLab on a free port in ``root`` (hermetic config dirs), yield (url, token,
    log path) once it answers, and stop it afterwards: the body of the lab fixtures."""
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "jupyter.log", "w")
    env = dict(os.environ)  # hermetic: no settings or state from earlier runs, as on a new machine
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(tmp_path_factory.mktemp(var.lower()))
    env.pop("JUPYTER_PATH", None)
    env.update(env_extra or {})
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("JupyterLab did not start: " + (root / "jupyter.log").read_text()[-2000:])
            time.sleep(0.5)
    yield url, token, root / "jupyter.log"
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, demo_pair_once):
    """JupyterLab serving a notebook whose kernel loads the demo pair (trained by demo_pair_once,
    so the kernel only loads it)."""
    _require_browser()
    root = tmp_path_factory.mktemp("lab")
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_code_cell(
        "from probe.demo.pair import load_demo_pair\nfrom probe.widgets import Explorer\n"
        "base, tuned = load_demo_pair()\nExplorer(base, tuned)"))
    nbformat.write(nb, root / "explorer.ipynb")
    yield from serve_lab(root, tmp_path_factory)


def _run_first_cell(page, tries: int = 4) -> None:
    """Shift+Enter in the first cell until its prompt shows it ran ([*] or [1])."""
    ran = ("() => { const p = document.querySelector('.jp-Cell .jp-InputPrompt');"
           " return !!p && /\\[(\\*|\\d+)\\]/.test(p.textContent); }")
    for _ in range(tries):
        page.locator(".jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(ran, timeout=15_000)
            return
        except Exception:
            page.keyboard.press("Escape")  # close whatever dialog took the keys, then retry
    raise AssertionError("the notebook cell never started running")


def test_explorer_in_jupyterlab_shows_the_token_strip_and_alternatives(browser, jupyterlab, demo_pair):
    import re

    url, token, server_log = jupyterlab
    prompt, target = "What is the capital of France?", "The capital of France is Paris."
    _, tuned = demo_pair  # the same pair the kernel loads: json-only adapter active
    expected = probe.score(tuned, prompt, target)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(f"{url}/lab/tree/explorer.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        _run_first_cell(page)
        boxes = page.locator(".jp-OutputArea .widget-textarea textarea")
        boxes.first.wait_for(timeout=300_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "explorer-jupyterlab-failure.png"), full_page=True)
        raise AssertionError("the Explorer did not appear; JupyterLab log tail:\n"
                             + server_log.read_text()[-3000:]) from None
    boxes.nth(0).fill(prompt)
    boxes.nth(1).fill(target)
    page.locator(".jp-OutputArea button", has_text=re.compile(r"^\s*Run\s*$")).click()
    page.wait_for_selector(".jp-OutputArea .probe-tok", timeout=120_000)
    tokens = page.locator(".jp-OutputArea .probe-strip .probe-tok")
    assert tokens.count() == len(expected)
    third = tokens.nth(2)
    third.hover()
    tip = third.locator(".probe-tip")
    assert tip.is_visible()
    text = tip.inner_text()
    assert "rank" in text and repr(expected.steps[2].top[0].text) in text
    page.screenshot(path=str(ARTIFACTS / "explorer-jupyterlab.png"), full_page=True)
    page.close()


def test_a_training_example_view_shows_hostile_text_as_text(browser, tmp_path):
    from probe.render.train_example import example_html, token_body
    from probe.train.loss import ExampleLoss
    from probe.train.example_case import ExampleCase
    from probe.widgets.data_panel import case_html

    steps = tuple(TokenStep(index=i, id=7, text=t, start=s, end=s + len(t), logprob=-0.1, prob=0.9, rank=1,
                            entropy=0.2, top=(Alternative(7, HOSTILE, 0.9, -0.1),))
                  for i, (t, s) in enumerate([(HOSTILE, 0), ("<b>x", len(HOSTILE))]))
    trace = TokenTrace(prompt=HOSTILE, text=HOSTILE + "<b>x", steps=steps, model=HOSTILE)
    e = ExampleLoss(1, HOSTILE, "messages", 4, (2.0, 1.0), (0.5, 3.0), ("text", "text"), (), trace, trace)
    body = example_html(e, mark=1) + token_body(e, 1) + case_html(ExampleCase(1, "messages", HOSTILE, HOSTILE), "<b>")
    page_file = tmp_path / "example.html"
    page_file.write_text(f"<!doctype html><meta charset=utf-8><body>{body}</body>", encoding="utf-8")
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(page_file.as_uri())
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0 and page.locator("b").count() == 1  # only the headline's own <b>
    assert page.locator(".probe-strip").count() == 3  # the loss change, tuned, base
    first = page.locator(".probe-strip").first.locator(".probe-tok").first
    assert first.evaluate("el => el.textContent").replace("\u00b7", " ") == HOSTILE
    assert "change -1.500" in first.get_attribute("title") and HOSTILE in first.get_attribute("title")
    assert HOSTILE in page.locator("body").inner_text() and dialogs == []
    page.close()
