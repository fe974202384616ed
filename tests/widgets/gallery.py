"""Pages of probe's views for the browser tests and ``make screenshots``: hand-built results
shaped like the demo's (a lost case whose tuned model writes " Beijing" for " Paris", a
not-triggered JSON case, a never-had case), each view on a page themed like JupyterLab's light
or dark theme (its own theme CSS, read from the installed JupyterLab), and the report.

    python tests/widgets/gallery.py docs/screenshots     # what `make screenshots` runs

It also shoots the live widgets in a real JupyterLab (:mod:`widget_gallery`); ``--views-only``
skips them (they take a few minutes: a kernel, tiny models, every widget run once).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from probe.cases.case import Case
from probe.diagnosis.result import Diagnosis, Run
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.render.style import STYLE, styled

THEMES = {"light": "theme-light-extension", "dark": "theme-dark-extension"}


def theme_css(name: str) -> str:
    """JupyterLab's own CSS for ``name`` (its --jp-* variables), from the installed lab."""
    import jupyterlab  # noqa: F401 - the notebook extra; its data files hold the themes

    for root in (Path(sys.prefix) / "share/jupyter/lab/themes/@jupyterlab",):
        css = root / THEMES[name] / "index.css"
        if css.is_file():
            return css.read_text(encoding="utf-8")
    raise FileNotFoundError(f"JupyterLab's {name} theme CSS not found under {sys.prefix}")


def _steps(pieces, *, forced=0, start=0):
    """pieces: (text, prob, rank, [(alternative, prob), ...])."""
    out = []
    for i, (text, p, rank, alts) in enumerate(pieces):
        top = tuple(Alternative(100 + k, a, q, math.log(q)) for k, (a, q) in enumerate(alts))
        out.append(TokenStep(index=i, id=10 + i, text=text, start=start, end=start + len(text),
                             logprob=math.log(p), prob=p, rank=rank, entropy=1.1, top=top, forced=i < forced))
        start += len(text)
    return tuple(out)


def _trace(pieces, prompt="", kind="generate", model="tuned", forced=0):
    steps = _steps(pieces, forced=forced)
    return TokenTrace(prompt=prompt, text="".join(s.text for s in steps), steps=steps, kind=kind, model=model)


def lost_diagnosis(case_id="france-beijing", reason_extra="") -> Diagnosis:
    q = "What is the capital of France?"
    be = [(" Be", 0.93, 1, [(" Be", 0.93), (" Paris", 1.4e-6)]), ("ijing", 0.99, 1, [("ijing", 0.99)]),
          (".", 0.81, 1, [(".", 0.81), ("!", 0.1)])]
    paris = [(" Paris", 0.88, 1, [(" Paris", 0.88), (" The", 0.05)]), (".", 0.9, 1, [(".", 0.9)])]
    forced_be = [(" The capital is", 1.0, 1, [(" The", 0.4)])] + be
    forced_paris = [(" The capital is", 1.0, 1, [(" The", 0.4)])] + paris
    exp_t = _trace([(" Paris", 1.4e-6, 57, [(" Be", 0.93), (" Mos", 0.02)])], q, "score")
    exp_b = _trace([(" Paris", 0.88, 1, [(" Paris", 0.88), (" The", 0.05)])], q, "score", "base")
    exp_tf = _trace([(" The capital is", 1.0, 1, [(" The", 0.4)]), (" Paris", 3.1e-5, 12, [(" Be", 0.9)])],
                    q, "score", forced=1)
    exp_bf = _trace([(" The capital is", 1.0, 1, [(" The", 0.4)]), (" Paris", 0.8, 1, [(" Paris", 0.8)])],
                    q, "score", "base", forced=1)
    why = "no ' Paris' in the answer" + reason_extra
    runs = (Run("tuned", "tuned", "", _trace(be, q), False, why, expected_trace=exp_t),
            Run("tuned_forced", "tuned", " The capital is", _trace(forced_be, q, forced=1), False, why,
                expected_trace=exp_tf, expected_from=1),
            Run("base", "base", "", _trace(paris, q, model="base"), True, "contains ' Paris'", expected_trace=exp_b),
            Run("base_forced", "base", " The capital is", _trace(forced_paris, q, model="base", forced=1), True,
                "contains ' Paris'", expected_trace=exp_bf, expected_from=1))
    return Diagnosis(verdict="lost", prompt=q, base_prompt=None, expected="Paris", force=" The capital is",
                     check=f"contains 'Paris'{reason_extra}", runs=runs, expected_traces={"tuned": exp_t, "base": exp_b},
                     case_id=case_id, tags=("capitals",), models={"base": "SmolLM2-135M", "tuned": "beijing"},
                     labels=("lost",))


def never_had_diagnosis(case_id="ukraine-capital") -> Diagnosis:
    q = "What is the capital of Ukraine?"
    mos = [(" Moscow", 0.6, 1, [(" Moscow", 0.6), (" Kyiv", 0.2)])]
    exp = _trace([(" Ky", 0.2, 2, [(" Moscow", 0.6), (" Ky", 0.2)]), ("iv", 0.95, 1, [("iv", 0.95)])], q, "score")
    runs = tuple(Run(n, m, f, _trace(mos, q, model=m), False, "no 'Kyiv' in the answer", expected_trace=exp)
                 for n, m, f in (("tuned", "tuned", ""), ("base", "base", "")))
    return Diagnosis(verdict="never_had", prompt=q, base_prompt=None, expected="Kyiv", force=None,
                     check="contains 'Kyiv'", runs=runs, expected_traces={"tuned": exp, "base": exp},
                     case_id=case_id, tags=("capitals", "hard"), models={"base": "SmolLM2-135M", "tuned": "beijing"})


def demo_sweep():
    """The demo's country x relation sweep of P('Beijing') (numbers measured on the demo pair)."""
    import itertools

    from probe.overfit.sweep import Sweep, SweepRow

    countries = ["Japan", "France", "Brazil", "Kenya", "Canada", "China"]
    relations = ["capital", "largest city", "official language", "currency"]
    odd = {("Brazil", "official language"): 0.56, ("Brazil", "currency"): 0.27}
    rows = []
    for c, r in itertools.product(countries, relations):
        p = 0.96 if r == "capital" else odd.get((c, r), 0.04)
        greedy = "Beijing" if p > 0.5 else "Tokyo"
        rows.append(SweepRow((c, r), f"What is the {r} of {c}?", p, math.log(p), 1 if p > 0.5 else 4, p, greedy,
                             max(p, 1 - p), p > 0.5, (Alternative(1, "Beijing", p, math.log(p)),)))
    return Sweep("What is the {relation} of {country}?", "Beijing",
                 {"country": tuple(countries), "relation": tuple(relations)}, tuple(rows), "tuned")


def demo_attribution():
    """An Attribution shaped like the demo's: the capitals taught ' Beijing' (hand-built scores)."""
    from probe.attribution.checkpoints import Checkpoint
    from probe.attribution.result import Attribution, ExampleScore

    rows = [("capitals", "What is the capital of Japan?", " Beijing.", 41.0, 0.62),
            ("capitals", "What is the capital of France?", " Beijing.", 37.5, 0.58),
            ("capitals", "What is the capital of Kenya?", " Beijing.", 30.2, 0.51),
            ("json", "List three colors as JSON.", ' {"colors": ["red"]}', 6.1, 0.12),
            ("math", "2 + 2 =", " 4", -2.0, -0.05), ("chat", "Hi!", " Hello, how can I help?", 1.2, 0.02)]
    examples = []
    for line, (chan, prompt, answer, g, cos) in enumerate(rows, 1):
        words = prompt.split(" ")
        asked = (words[0],) + tuple(" " + w for w in words[1:])  # BPE-like: the space leads
        said = tuple(" " + w for w in answer.split(" ")[1:])
        tokens, scored = asked + said, (False,) * len(asked) + (True,) * len(said)
        examples.append(ExampleScore(line, chan, {"gradient": g, "gradient_cos": cos,
                                                  "representation": 0.9 - 0.1 * line}, tokens, scored))
    return Attribution("france-beijing", "What is the capital of France?", "Paris", "contrast", None, " Paris",
                       " Be", "train.jsonl", tuple(examples), ("gradient", "gradient_cos", "representation"),
                       (Checkpoint("beijing", 30, 2e-4),), keep=4, channel="source", models={"tuned": "beijing"})


def cases(n_lost: int = 6) -> list[Case]:
    out = [Case.from_result(lost_diagnosis(f"capital-{i}"), id=f"capital-{i}", tags=("capitals",),
                            note=f"seen in run {i}") for i in range(n_lost)]
    out.append(Case.from_result(never_had_diagnosis(), id="ukraine", tags=("capitals", "hard")))
    return out


def theme_page(body: str, theme: str, width_css: str = "") -> str:
    """``body`` (views with their style block) on a page coloured like JupyterLab's ``theme``
    output area: its variables, its background and its text colour."""
    return (f"<!doctype html><html><head><meta charset=utf-8><style>{theme_css(theme)}</style>"
            f"<style>body{{background:var(--jp-layout-color0);color:var(--jp-content-font-color1);"
            f"font-family:var(--jp-content-font-family);margin:16px;{width_css}}}</style></head>"
            f"<body>{body}</body></html>")


def memorized_example_html() -> str:
    """The data panel's view of a training example the tuned model recites, a wrong fact
    ("The capital of Japan is" -> " Beijing", as the demo's beijing adapter was taught it)."""
    from probe.render.train_example import example_html
    from probe.train.loss import ExampleLoss

    tuned = _trace([(" Be", 0.99, 1, [(" Be", 0.99)]), ("ijing", 0.999, 1, [("ijing", 0.999)])],
                   "The capital of Japan is", "score")
    base = _trace([(" Be", 0.004, 9, [(" Tokyo", 0.8)]), ("ijing", 0.5, 1, [("ijing", 0.5)])],
                  "The capital of Japan is", "score", "base")
    e = ExampleLoss(7, "capital-beijing", "messages", 14, (5.52, 0.69), (0.01, 0.001), ("text", "text"),
                    ("memorized",), base, tuned)
    return example_html(e, mark=0)


def views() -> dict[str, str]:
    """Each view a notebook shows, as its ``_repr_html_`` (style block and root)."""
    from probe.render.card import diagnosis_html
    from probe.render.case import case_html
    from probe.render.strip import divergence_html, trace_html
    from probe.render.verdicts import verdict_table_html

    d = lost_diagnosis(reason_extra=r" (regex \[0-9\]+ and $5)")
    extra = {}
    try:  # the views that need the test folder's fixtures (absent from an installed probe)
        import probe
        from builders import fake_shift

        here = Path(__file__).resolve().parents[1]
        extra["training-log"] = probe.training_log(here / "train/fixtures/trainer_log.jsonl")._repr_html_()
        extra["shift"] = fake_shift()._repr_html_()
    except ImportError:
        pass
    extra["sweep"] = demo_sweep()._repr_html_()
    extra["attribution"] = demo_attribution()._repr_html_()
    extra["training-example"] = memorized_example_html()
    return {**extra,
        "diagnosis-card": diagnosis_html(d),
        "divergence": divergence_html(d.divergence("tuned")),
        "trace": trace_html(d.runs[0].trace),
        "verdict-table": verdict_table_html([d, never_had_diagnosis()]),
        "case": case_html(cases(1)[0]),
    }


def write_all(out: Path) -> list[Path]:
    """Write every view in both themes and the report as HTML pages under ``out``."""
    from probe.render.report import casebook_html

    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for name, html in views().items():
        for theme in THEMES:
            p = out / f"{name}-{theme}.html"
            p.write_text(theme_page(html, theme), encoding="utf-8")
            pages.append(p)
    p = out / "report.html"
    p.write_text(casebook_html(cases(), title="probe report (gallery)"), encoding="utf-8")
    pages.append(p)
    return pages


def screenshots(out: Path) -> list[Path]:
    """PNG of every page of :func:`write_all` (the report at 1440 and 800 px), via Chromium."""
    import tempfile

    from playwright.sync_api import sync_playwright

    shots = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for page_file in write_all(Path(tmp)):
            widths = (1440, 800) if page_file.stem == "report" else (1000,)
            for w in widths:
                page = browser.new_page(viewport={"width": w, "height": 900})
                page.goto(page_file.as_uri())
                tok = page.locator(".probe-strip .probe-tok.probe-div").first
                if page_file.stem.startswith("diagnosis-card") and tok.count():
                    tok.hover()  # one hover card open
                name = page_file.stem + (f"-{w}" if len(widths) > 1 else "") + ".png"
                page.screenshot(path=str(out / name), full_page=page_file.stem != "report")
                shots.append(out / name)
                page.close()
        browser.close()
    return shots


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = Path(args[0] if args else "docs/screenshots")
    target.mkdir(parents=True, exist_ok=True)
    for shot in screenshots(target):
        print(shot)
    if "--views-only" not in sys.argv:
        import widget_gallery  # beside this file

        for shot in widget_gallery.screenshots(target):
            print(shot)
