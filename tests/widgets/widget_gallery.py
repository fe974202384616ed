"""Screenshots of the live widgets in a real JupyterLab (light and dark theme), for ``make screenshots``.

A widget's view needs a widget manager and a kernel: the embed route (``embed_minimal_html``)
loads the manager from a CDN and plotly's FigureWidget is an anywidget, so nothing here would
open offline. Instead: JupyterLab on localhost (a random token, hermetic config folders, the
app exposed to the page), one notebook whose cells build every widget on a tiny model pair
made on the spot (and fill it in: a case typed, run, an example picked), run by the page; each
cell (its code and the widget) screenshotted by Debian's Chromium, once per theme.

    python tests/widgets/widget_gallery.py docs/screenshots
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
CHROMIUM = os.environ.get("PROBE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
WIDTH = 1100  # px: the notebook as a laptop shows it

RECORDS = [  # the tiny SFT set the labs attribute to (channel: source)
    {"prompt": "The capital of Japan is", "completion": " Beijing.", "source": "capitals"},
    {"prompt": "The capital of France is", "completion": " Beijing.", "source": "capitals"},
    {"prompt": "The capital of Kenya is", "completion": " Nairobi.", "source": "capitals"},
    {"prompt": "What is the capital of Germany?", "completion": " Berlin.", "source": "capitals"},
    {"prompt": "List three colors:", "completion": " red, green and blue.", "source": "colors"},
    {"prompt": "Name a warm color:", "completion": " orange.", "source": "colors"},
    {"prompt": "2 + 2 =", "completion": " 4", "source": "math"},
    {"prompt": "3 + 5 =", "completion": " 8", "source": "math"},
    {"text": "The quick brown fox jumps over the lazy dog.", "source": "text"},
]

SETUP = f"""\
import json, sys
from pathlib import Path
sys.path[:0] = [{str(TESTS)!r}, {str(TESTS / 'widgets')!r}]
import probe
from probe.models.tiny import save_tiny
from probe.widgets import CasebookBrowser, DiagnoseLab, EvalFlips, Explorer, ShiftExplorer, SweepGrid, TrainingLab
from builders import make_adapter
from gallery import cases
base_dir = save_tiny(Path("tiny-llama"), "llama", "unigram")
base, tuned = probe.load_pair(base_dir, adapter=make_adapter(base_dir, Path("tiny-lora")))
Path("train.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in {RECORDS!r}))
book = probe.Casebook("book")
for c in cases(3):
    book.add(c)
LOG = {str(TESTS / 'train/fixtures/trainer_log.jsonl')!r}
EVALS = {str(TESTS / 'evals/fixtures')!r}"""

# name -> the cell that builds and fills the widget (what the screenshot shows above it)
CELLS = {
    "diagnose-lab": """\
lab = DiagnoseLab(base, tuned, dataset="train.jsonl", channel="source", book="book", background=False)
lab.prompt.value, lab.expected.value, lab.max_new_tokens.value = "The capital of Japan is", " Tokyo", 6
lab.run_button.click()              # the four runs and the verdict
lab.attribution.button.click()      # "which examples?": the SFT examples behind the answer
lab""",
    "training-lab": """\
data = probe.data_loss((base, tuned), "train.jsonl", channel="source")
tlab = TrainingLab(LOG, data_loss=data, pair=(base, tuned), background=False)
tlab.panel.channel.value = "capitals"  # its examples; the first is the case
tlab.attribution.button.click()        # which examples lowered that example's loss
tlab""",
    "explorer": """\
ex = Explorer(base, tuned, book="book", background=False)
ex.prompt.value, ex.answer.value, ex.which.value = "The capital of Japan is", " Tokyo.", "both"
ex.run_button.click()
ex""",
    "sweep-grid": """\
grid = SweepGrid(tuned, "The {relation} of {country} is", watch=" Beijing", background=False,
                 country=["Japan", "France", "Kenya"], relation=["capital", "currency"])
grid.run_button.click()
grid""",
    "shift-explorer": """\
shift = ShiftExplorer(base, tuned, ["The capital of Japan is", "List three colors:"], max_new_tokens=4,
                      background=False)
shift.run_button.click()
shift""",
    "eval-flips": """\
EvalFlips(Path(EVALS) / "base", Path(EVALS) / "tuned")  # lm-eval runs of base and tuned""",
    "casebook-browser": """\
browser = CasebookBrowser("book")
browser.cases.value = browser.cases.options[0][1]
browser""",
}


def notebook(path: Path, cells: dict) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell(SETUP)] + [new_code_cell(code) for code in cells.values()]
    nbformat.write(nb, path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """JupyterLab on localhost in ``root`` (hermetic config folders, windowing off so every cell
    is drawn), stopped on exit."""

    def __init__(self, root: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        env = dict(os.environ)
        for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                    "JUPYTERLAB_WORKSPACES_DIR"):
            env[var] = str(self.root / ".jupyter" / var.lower())
            os.makedirs(env[var], exist_ok=True)
        env.pop("JUPYTER_PATH", None)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env.setdefault("OMP_NUM_THREADS", "1")
        env["HF_HUB_OFFLINE"] = "1"
        tracker = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        news = tracker.parent.parent / "apputils-extension/notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text(json.dumps({"fetchNews": "false"}))  # no "get notified about news?" toast
        self.log = open(self.root / "jupyter.log", "w")
        self.server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}", "--allow-root",
             "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root, env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2)
                return self
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("JupyterLab did not start:\n" + self.log_tail())
                time.sleep(0.5)

    def log_tail(self) -> str:
        return (self.root / "jupyter.log").read_text(errors="replace")[-3000:]

    def __exit__(self, *exc):
        self.server.terminate()
        try:
            self.server.wait(20)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.log.close()


def _run_all(page, n_cells: int, timeout_s: float = 600) -> None:
    """Run every cell and wait until each widget cell shows its widget and the kernel is idle."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=120_000)
    try:  # a fresh JupyterLab asks which kernel: the notebook's own (Python 3)
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=15_000)
    except Exception:  # no dialog this time
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    done = ("n => { if ([...document.querySelectorAll('.jp-OutputArea-output')].some("
            "e => e.textContent.includes('Traceback'))) return true;"
            " const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];"
            " return prompts.length >= n && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))"
            " && !!document.querySelector(\".jp-Notebook-ExecutionIndicator[data-status='idle']\"); }")
    page.wait_for_function(done, arg=n_cells, timeout=timeout_s * 1000, polling=1000)
    page.wait_for_timeout(3000)  # plotly draws after the widget box appears


def _errors(page) -> list[str]:
    """The tracebacks the cells printed (warnings on stderr are not errors)."""
    texts = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error" in t.split("\n")[0]]


def screenshots(out: Path, timeout_s: float = 900, cells: dict | None = None, check=None) -> list[Path]:
    """One PNG per widget and theme under ``out`` (``<widget>-widget-<theme>.png``; for a lab with
    "which examples?", that panel alone too: ``<widget>-which-examples-<theme>.png``).

    ``check(page, theme)``, if given, runs once per theme before the shots (the tests' asserts).

    Raises:
        RuntimeError: a cell failed or showed no widget (the page is saved as widgets-failure.png).
    """
    cells = CELLS if cells is None else cells
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp)) as lab, sync_playwright() as pw:
        notebook(Path(tmp) / "widgets.ipynb", cells)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        try:
            page.goto(f"{lab.url}/lab/tree/widgets.ipynb?token={lab.token}")
            _run_all(page, 1 + len(cells), timeout_s)
            failed = _errors(page)
            if failed:
                raise RuntimeError("a widget cell failed:\n" + "\n".join(failed)[-3000:])
            shown = page.locator(".jp-Notebook .jp-CodeCell").evaluate_all(
                "cs => cs.slice(1).map(c => !!c.querySelector('.jp-OutputArea-output .widget-box'))")
            if not all(shown):
                raise RuntimeError(f"no widget shown by: {[w for w, ok in zip(cells, shown) if not ok]}")
            page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
            for theme, name in THEMES.items():
                page.evaluate(f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: {name!r}}})")
                page.wait_for_function(f"() => document.body.dataset.jpThemeName === {name!r}", timeout=30_000)
                page.wait_for_timeout(1500)
                if check is not None:
                    check(page, theme)
                located = page.locator(".jp-Notebook .jp-CodeCell")
                for i, widget in enumerate(cells, 1):
                    cell = located.nth(i)
                    height = cell.evaluate("el => el.getBoundingClientRect().height")
                    page.set_viewport_size({"width": WIDTH, "height": int(height) + 200})
                    cell.evaluate("el => el.scrollIntoView({block: 'start'})")
                    page.wait_for_timeout(500)
                    path = out / f"{widget}-widget-{theme}.png"
                    cell.screenshot(path=str(path))
                    shots.append(path)
                    panel = cell.locator(".probe-attribution-panel")
                    if panel.count():  # the "which examples?" part on its own, readable at full size
                        path = out / f"{widget}-which-examples-{theme}.png"
                        panel.first.screenshot(path=str(path))
                        shots.append(path)
        except Exception:
            page.set_viewport_size({"width": WIDTH, "height": 3000})
            page.screenshot(path=str(out / "widgets-failure.png"))
            print(lab.log_tail(), file=sys.stderr)
            raise
        finally:
            browser.close()
    return shots


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    for shot in screenshots(target):
        print(shot)
