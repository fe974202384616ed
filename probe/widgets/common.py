"""Pieces the widget apps share: running work off the UI thread, errors shown as messages."""

from __future__ import annotations

import threading
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

    An exception becomes an error message in the widget, never a dead widget.
    """

    def __init__(self, status, buttons, background: bool = True):
        self.status, self.buttons, self.background = status, buttons, background
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, label: str, job) -> None:
        def work():
            self.error = None
            try:
                job()
                self.status.value = message("ok", f"{label}: done")
            except Exception as err:  # shown to the user; kept for tests and debugging
                self.error = err
                last = traceback.format_exception_only(type(err), err)[-1].strip()
                self.status.value = message("error", f"{label} failed: {last}")
            finally:
                for b in self.buttons:
                    b.disabled = False

        for b in self.buttons:
            b.disabled = True
        self.status.value = message("busy", f"{label}: running...")
        if self.background:
            self.thread = threading.Thread(target=work, daemon=True)
            self.thread.start()
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
