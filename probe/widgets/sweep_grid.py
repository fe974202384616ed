"""SweepGrid: vary the words of a prompt, watch one answer, find the overfit trigger.

    >>> g = SweepGrid(tuned, "What is the {relation} of {country}?", watch=" Beijing",
    ...               relation=["capital", "language"], country=["Japan", "France"])
    >>> g.run_button.click()
    >>> g.runner.wait()

One text box per ``{slot}`` of the template (comma-separated values; the boxes follow the
template as you edit it), a heatmap of P(watch) (click a cell: the top-k next tokens there),
the summary in words and the table of every prompt.
"""

from __future__ import annotations


from ..render.sweep import cell_html, rows_html, summary_html, sweep_figure, top_html
from ..overfit.sweep import slot_names, sweep
from .common import html_view, Runner, _ipywidgets, message, show_figure
from .explorer import typed

NO_Y = "(none)"  # the y choice for bars over x alone (slot names are identifiers: no clash)


def split_values(text: str) -> list[str]:
    """A slot box's value: comma-separated, spaces around commas dropped, empties skipped."""
    return [v for v in (typed(x).strip() for x in text.split(",")) if v]


class SweepGrid:
    """Interactive :func:`probe.sweep` (see the module docstring)."""

    def __init__(self, lm, template: str = "What is the capital of {country}?", watch: str = " Beijing",
                 *, top_k: int = 5, background: bool = True, **slots):
        w = _ipywidgets()
        import plotly.graph_objects as go

        self.lm, self.top_k, self.result, self._quiet = lm, top_k, None, False
        self._w = w
        self._typed = {name: ", ".join(map(str, [v] if isinstance(v, str) else v)) for name, v in slots.items()}
        self.template = w.Text(value=template, description="template", layout={"width": "100%"})
        self.slot_box = w.VBox()
        self.slot_inputs: dict = {}
        self.watch = w.Text(value=watch.replace("\n", "\\n"), description="watch",
                            placeholder="e.g. ' Beijing' (leading space matters)")
        self.x = w.Dropdown(description="x", options=[])
        self.y = w.Dropdown(description="y", options=[])
        self.run_button = w.Button(description="Run", button_style="primary")
        self.status = html_view(message("info", "Fill in the slots (comma-separated) and press Run."))
        self.summary = html_view()
        self.chart = go.FigureWidget()
        self.detail = html_view()
        self.table = html_view()
        self.runner = Runner(self.status, [self.run_button], background)
        self.run_button.on_click(lambda _: self.run())
        self.template.observe(lambda _: self._sync_slots(), names="value")
        for axis in (self.x, self.y):
            axis.observe(lambda _: self._draw(), names="value")
        self._sync_slots()
        self.widget = w.VBox([self.template, self.slot_box, self.watch, self.run_button, self.status,
                              self.summary, w.HBox([self.x, self.y]), self.chart, self.detail, self.table])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _sync_slots(self) -> None:
        """One text box per template field, keeping what was typed in boxes that stay."""
        try:
            names = slot_names(self.template.value)
        except (TypeError, ValueError) as err:
            self.status.value = message("error", f"template: {err}")
            return
        for name, box in self.slot_inputs.items():
            self._typed[name] = box.value
        self.slot_inputs = {name: self._w.Text(value=self._typed.get(name, ""), description=name,
                                               placeholder="comma-separated values",
                                               layout={"width": "100%"}) for name in names}
        self.slot_box.children = list(self.slot_inputs.values())

    def run(self) -> None:
        """Sweep with the current boxes and show the result (in a thread by default)."""
        template, watch = self.template.value, typed(self.watch.value)
        slots = {name: split_values(box.value) for name, box in self.slot_inputs.items()}

        def job():
            self.result = sweep(self.lm, template, watch, top_k=self.top_k, **slots)
            self._render()

        self.runner.start("sweep", job)

    def _render(self) -> None:
        s = self.result
        self.summary.value = summary_html(s)
        names = list(s.slots)
        self._quiet = True  # one draw below, not one per dropdown change
        try:
            self.x.options, self.y.options = names, [NO_Y] + names
            self.x.value, self.y.value = names[0], (names[1] if len(names) > 1 else NO_Y)
        finally:
            self._quiet = False
        self._draw()
        self.table.value = rows_html(s)
        best = max(s.rows, key=lambda r: r.prob)
        self.detail.value = top_html(best)

    def _axes(self) -> tuple[str, str | None]:
        x, y = self.x.value, self.y.value
        return x, (None if y in (x, NO_Y, None) else y)

    def _draw(self) -> None:
        if self.result is None or self._quiet or not self.x.value:
            return
        x, y = self._axes()
        fig = sweep_figure(self.result, x=x, y=y, bars=y is None)
        show_figure(self.chart, fig, self._on_click)

    def _on_click(self, _trace, points, _state=None) -> None:
        if not points.point_inds:
            return
        x, y = self._axes()
        _, _, _, members = self.result.grid(x, y)
        col = int(points.xs[0])
        cell = members[col] if y is None else members[int(points.ys[0])][col]
        self.detail.value = cell_html([self.result.rows[i] for i in cell])
