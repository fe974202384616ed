"""Pieces the widget apps share: running work off the UI thread, errors shown as messages."""

from __future__ import annotations

import threading
import time
import traceback

from ..render.status import message  # noqa: F401  (the apps import it from here)
from ..render.style import ROOT, STYLE, root


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("widgets need ipywidgets and plotly: pip install 'token-probe[notebook]'") from err
    return ipywidgets


def rooted(html: str) -> str:
    """``html`` as a view: the style block, then the body inside the view root (MathJax skips
    it; theme colours). Already rooted HTML is left as it is."""
    if not html:
        return html
    body = html[len(STYLE):] if html.startswith(STYLE) else html
    if body.startswith(f'<div class="{ROOT}">'):
        return STYLE + body
    return STYLE + root(body)


_VIEW = None


def html_view(value: str = ""):
    """An ipywidgets HTML whose every value is :func:`rooted`: JupyterLab's MathJax typesets
    an HTML widget's content unless it is marked, and a view reads in both themes."""
    global _VIEW
    if _VIEW is None:
        w = _ipywidgets()
        import traitlets

        class View(w.HTML):
            @traitlets.validate("value")
            def _rooted(self, proposal):
                return rooted(proposal["value"])

        _VIEW = View
    return _VIEW(value)


class Runner:
    """Runs a job in a thread (so the notebook stays responsive) and reports into ``status``.

    ``buttons`` are disabled while the job runs (a lab lists the buttons of every job that uses the
    same models), then set back as they were. While a background job runs, its status line counts the seconds (``label: running... 12 s``),
    so long work never looks frozen. An exception becomes an error message in the widget, never
    a dead widget.
    """

    TICK = 1.0  # seconds between the running line's updates

    def __init__(self, status, buttons, background: bool = True):
        self.status, self.buttons, self.background = status, buttons, background
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._finished = threading.Event()

    def start(self, label: str, job, doing: str = "") -> None:
        """Run ``job()``; ``doing``: what it does, in words, shown on the running line."""
        finished = threading.Event()
        self._finished = finished

        def work():
            self.error = None
            try:
                job()
                final = message("ok", f"{label}: done")
            except Exception as err:  # shown to the user; kept for tests and debugging
                self.error = err
                last = traceback.format_exception_only(type(err), err)[-1].strip()
                final = message("error", f"{label} failed: {last}")
            with self._lock:
                finished.set()
                self.status.value = final
            for b, was in zip(buttons, before):  # as they were: a button disabled for a reason stays so
                b.disabled = was

        def tick():
            began = time.monotonic()
            while not finished.wait(self.TICK):
                with self._lock:
                    if not finished.is_set():
                        self.status.value = running(time.monotonic() - began)

        def running(seconds: float | None) -> str:
            took = "" if seconds is None else f" {seconds:.0f} s"
            return message("busy", f"{label}: running...{took}" + (f" ({doing})" if doing else ""))

        buttons = list(self.buttons)
        before = [b.disabled for b in buttons]
        for b in buttons:
            b.disabled = True
        self.status.value = running(None)
        if self.background:
            self.thread = threading.Thread(target=work, daemon=True)
            self.thread.start()
            threading.Thread(target=tick, daemon=True).start()
        else:
            work()

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def show_figure(chart, fig, on_click=None) -> None:
    """Put ``fig``'s traces and layout into the FigureWidget ``chart``; clicks go to ``on_click``."""
    with chart.batch_update():
        chart.data = []
        chart.layout = fig.layout
        for trace in fig.data:
            chart.add_trace(trace)
    if on_click is not None:
        for trace in chart.data:
            trace.on_click(on_click)
