"""CasebookBrowser: list the saved cases, filter them, open one's rich view.

    >>> CasebookBrowser("bad-cases/")            # or a probe.Casebook
"""

from __future__ import annotations

from ..cases.casebook import open_casebook
from ..render.case import case_html
from ..render.status import unreadable_html
from .common import html_view, _ipywidgets, message

ANY = "(any)"


def _label(summary) -> str:
    verdict = summary.verdict or "-"
    return f"{verdict:<13} {summary.title or summary.id}  ·  {summary.created}"


class CasebookBrowser:
    """Browse a Casebook: filter by verdict, tag or text; pick a case to see it whole."""

    def __init__(self, book):
        w = _ipywidgets()
        self.book = open_casebook(book)
        self.verdict = w.Dropdown(description="verdict", options=[ANY])
        self.tag = w.Dropdown(description="tag", options=[ANY])
        self.text = w.Text(description="text", placeholder="title, note or id contains")
        self.refresh_button = w.Button(description="refresh", icon="refresh")
        self.cases = w.Select(options=[], rows=10, layout={"width": "100%"})
        self.status = html_view()
        self.view = html_view()
        for control in (self.verdict, self.tag, self.text):
            control.observe(lambda _: self._fill(), names="value")
        self.cases.observe(lambda change: self.open(change["new"]), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = w.VBox([w.HBox([self.verdict, self.tag, self.text, self.refresh_button]),
                              self.cases, self.status, self.view])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def refresh(self) -> None:
        """Re-read the folder (cases added elsewhere appear) and the filter choices."""
        keep_v, keep_t = self.verdict.value, self.tag.value
        verdicts, tags = sorted(self.book.verdicts()), sorted(self.book.tags())
        self.verdict.options = [ANY, *verdicts]
        self.verdict.value = keep_v if keep_v in verdicts else ANY
        self.tag.options = [ANY, *tags]
        self.tag.value = keep_t if keep_t in tags else ANY
        self._fill()

    def shown(self) -> list:
        """Summaries of the cases that pass the filters, oldest first."""
        verdict = None if self.verdict.value == ANY else self.verdict.value
        tag = None if self.tag.value == ANY else self.tag.value
        q = self.text.value.strip().lower()
        rows = self.book.list(verdict=verdict, tag=tag)
        if q:
            rows = [s for s in rows if q in f"{s.id} {s.title} {s.note}".lower()]
        return rows

    def _fill(self) -> None:
        rows = self.shown()
        self.cases.options = [(_label(s), s.id) for s in rows]
        note = f"{len(rows)} of {len(self.book)} cases in {self.book.folder}"
        self.status.value = message("info", note) + unreadable_html(self.book.errors)
        if self.cases.value is None:
            self.view.value = ""

    def open(self, case_id) -> None:
        """Show one case's rich view (inputs, strips, charts, diagnosis card)."""
        if not case_id:
            return
        try:
            self.view.value = case_html(self.book.get(case_id))
        except Exception as err:  # a file removed or corrupted since listing: say so, keep going
            self.view.value = message("error", f"cannot open {case_id}: {err}")
