"""EvalFlips: browse which benchmark samples fine-tuning flipped.

    EvalFlips(probe.eval_flips("runs/base", "runs/tuned"))     # an EvalFlips result
    EvalFlips("runs/base", "runs/tuned", base=base, tuned=tuned)  # read, and Diagnose on a click

Pick a task (its counts; the lost and gained first), an outcome, a sample (its prompt, target,
both answers and, once diagnosed, why: each choice's log-probability and the token where the
right one falls behind, or the generation's verdict).
"""

from __future__ import annotations

from ..evals.flips import EvalFlips as Result, eval_flips
from ..render.evals import eval_flip_html, eval_flips_text
from ..render.phrases import clip
from ..render.regression import OUTCOMES
from .common import html_view, Runner, _ipywidgets, message


class EvalFlips:
    """Interactive view of a :class:`probe.EvalFlips` (see the module docstring)."""

    def __init__(self, flips_or_base_run, tuned_run=None, *, base=None, tuned=None, background: bool = True,
                 **diagnose_kwargs):
        w = _ipywidgets()
        self.result: Result | None = None
        self.summary = html_view()
        self.task = w.Dropdown(description="task", options=[], layout={"width": "60%"})
        self.outcome = w.ToggleButtons(options=list(OUTCOMES), value="lost")
        self.sample = w.Dropdown(description="sample", options=[], layout={"width": "100%"})
        self.detail = html_view()
        self.status = html_view()
        self.diagnose_button = w.Button(description="Diagnose flips", button_style="primary",
                                        disabled=base is None or tuned is None)
        if base is None or tuned is None:
            why = "Diagnose flips needs the models: EvalFlips(..., base=base, tuned=tuned)"
            self.diagnose_button.tooltip = why
            self.status.value = message("info", why)
        self.runner = Runner(self.status, [self.diagnose_button], background)
        self.task.observe(lambda _: self._show_task(), names="value")
        self.outcome.observe(lambda _: self._show_task(), names="value")
        self.sample.observe(lambda _: self._show_sample(), names="value")
        if base is not None and tuned is not None:
            self.diagnose_button.on_click(lambda _: self.diagnose(base, tuned, **diagnose_kwargs))
        flips = flips_or_base_run if isinstance(flips_or_base_run, Result) else None
        if flips is None:
            if tuned_run is None:
                raise TypeError("EvalFlips takes a probe.EvalFlips, or (base_run, tuned_run)")
            flips = eval_flips(flips_or_base_run, tuned_run)
        self.show(flips)
        self.widget = w.VBox([self.status, self.diagnose_button, self.summary, self.task, self.outcome,
                              self.sample, self.detail])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def diagnose(self, base, tuned, **kwargs) -> None:
        self.runner.start("diagnose", lambda: self.show(self.result.diagnose(base, tuned, **kwargs)))

    def show(self, result: Result) -> None:
        """Fill every view from ``result``, keeping the task and sample picked."""
        from html import escape

        keep_task, keep_sample = self.task.value, self.sample.value
        self.result = result
        self.summary.value = f"<pre>{escape(eval_flips_text(result))}</pre>"
        rows = {r["task"]: r for r in result.table()}
        self.task.options = [(f"{t}: lost {rows[t]['lost']}, gained {rows[t]['gained']} of {rows[t]['n']}", t)
                             for t in sorted(result.tasks, key=lambda t: -(rows[t]["lost"] + rows[t]["gained"]))]
        self.task.value = keep_task if keep_task in result.tasks else (self.task.options[0][1] if result.tasks else None)
        self._show_task()
        if keep_sample in [v for _, v in self.sample.options]:
            self.sample.value = keep_sample
        diagnosed = sum(s.diagnosis is not None for s in result.flips)
        button = self.diagnose_button
        why = f"; {button.tooltip}" if button.disabled and button.tooltip else ""  # why it is disabled
        self.status.value = message("ok", f"{len(result.samples)} samples, {len(result.flips)} flipped, "
                                    f"{diagnosed} diagnosed{why}")

    def _show_task(self) -> None:
        if self.result is None or self.task.value is None:
            return
        items = self.result.cell(self.task.value, self.outcome.value)
        self.sample.options = [(f"{s.id}: target {clip(s.sample.target, 30)!r}, tuned {clip(s.tuned.response, 30)!r}",
                                s.id) for s in items]
        self.sample.value = items[0].id if items else None
        self._show_sample()

    def _show_sample(self) -> None:
        if self.result is None or self.sample.value is None:
            self.detail.value = ""
            return
        self.detail.value = eval_flip_html(self.result.sample(self.sample.value))
