"""TrainingLab: a training run's loss curve with its findings, the rules' parameters live.

    lab = TrainingLab("runs/sft")                 # a run folder, a log file or a TrainingLog
    lab = TrainingLab(log, data_loss=result)      # with a per-channel loss table beside it
    lab = TrainingLab(None, data_loss=result, pair=(base, tuned))   # the data side alone

The chart is the log's plotly figure (train and eval loss, epoch bands, learning rate, each
warning marked); below it the findings. Moving a rule's slider reads the log again with that
parameter (``TrainingLog.reread``); picking a finding shows its numbers.

``data_loss``: a :class:`probe.DataLoss` (``probe.data_loss``'s result) gives the channel
table and the walk down from it (:class:`probe.widgets.data_panel.DataLossPanel`): pick a
channel for its examples, an example for its tuned and base token strips with the per-token
loss change, a token for both models' numbers, then "diagnose this case" sends the example's
prompt and answer to ``lab=`` (a DiagnoseLab) or to ``probe.diagnose`` on ``pair=(base, tuned)``
(the card shows below). ``dataset=``: the records, when ``data_loss`` read an iterable.

"which examples?" (under the data panel): the training examples that taught the picked
example's answer (:func:`probe.attribute` over the same dataset, the query "loss" of its answer
by default). It needs the models (``pair=`` or ``lab=``), the data (a ``data_loss`` read from a
file, or ``dataset=``) and a picked example; until then it is disabled and says which is missing.

Any other object with a ``channels`` attribute (the loss over the SFT data by channel,
``probe.data_loss``'s result): its ``_repr_html_()`` is shown if it has one, else a table of
``channels`` (a mapping of name -> number, or -> object with numeric attributes). Pass
``channel_view=`` (a function object -> HTML) to show it another way; its output is trusted
as HTML, so escape what it shows.
"""

from __future__ import annotations

import json
from html import escape

from ..render.chart import _plotly
from ..render.training import findings_html, training_text
from ..render.style import STYLE
from ..train.log import TrainingLog, training_log
from ..train.loss import DataLoss
from .attribution_panel import AttributionPanel
from .common import html_view, _ipywidgets, message, show_figure
from .data_panel import DataLossPanel

SLIDERS = {  # rule -> (min, max, step)
    "low_loss": (0.05, 2.0, 0.05),
    "step_window": (1, 10, 1),
    "step_ratio": (1.0, 10.0, 0.5),
    "step_min_drop": (0.0, 1.0, 0.01),
    "eval_points": (2, 10, 1),
    "spike_z": (2.0, 12.0, 0.5),
}


def channels_html(data_loss) -> str:
    """A table of ``data_loss.channels`` (escaped): name -> value, or name -> numeric attributes."""
    channels = getattr(data_loss, "channels", None)
    if channels is None:
        raise TypeError(f"data_loss must have a 'channels' attribute, got {type(data_loss).__name__}")
    items = channels.items() if hasattr(channels, "items") else (
        (getattr(c, "name", str(i)), c) for i, c in enumerate(channels))
    rows, cols = [], []
    for name, value in items:
        if isinstance(value, (int, float)):
            cells = {"value": value}
        else:
            cells = {k: v for k, v in vars(value).items() if isinstance(v, (int, float)) and not isinstance(v, bool)} \
                if hasattr(value, "__dict__") else {"value": value}
        cols += [c for c in cells if c not in cols]
        rows.append((name, cells))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    body = "".join(f'<tr><td class="l">{escape(str(n))}</td>' + "".join(
        f"<td>{escape(format(c[k], '.4g') if isinstance(c.get(k), float) else str(c.get(k, '')))}</td>"
        for k in cols) + "</tr>" for n, c in rows)
    return f'<table class="probe-data probe-channels"><tr><th class="l">channel</th>{head}</tr>{body}</table>'


def source_name(source: str) -> str:
    """Where the data came from, in words: a file's path, or "records given in Python"."""
    return "records given in Python (an iterable)" if source == "<iterable>" else source


class TrainingLab:
    """Interactive view of a :class:`probe.TrainingLog` (see the module docstring)."""

    def __init__(self, log_or_path=None, *, data_loss=None, channel_view=None, pair=None, lab=None,
                 dataset=None, background: bool = True, **read_options):
        w = _ipywidgets()
        if log_or_path is None and data_loss is None:
            raise ValueError("TrainingLab needs a training log, a data_loss, or both")
        self._panel_options = {"pair": pair, "lab": lab, "dataset": dataset, "background": background}
        self.panel: DataLossPanel | None = None
        self.channels = html_view()
        self.attribution = AttributionPanel(self._attribution_inputs, query="loss", background=background)
        self.data_box = w.VBox([self.channels, self.attribution.widget])
        self.data_loss = None
        self._channel_view = channel_view
        if log_or_path is None:
            self.log = None
            self.status = html_view()
            self.widget = w.VBox([self.status, self.data_box])
            self.set_data_loss(data_loss)
            return
        go = _plotly()
        self.log: TrainingLog = log_or_path if isinstance(log_or_path, TrainingLog) else \
            training_log(log_or_path, **read_options)
        self.status = html_view()
        self.summary = html_view()
        self.chart = go.FigureWidget()
        self.findings = html_view()
        self.pick = w.Dropdown(description="finding", options=[], layout={"width": "70%"})
        self.detail = html_view()
        self.sliders = {}
        for name, (lo, hi, step) in SLIDERS.items():
            value = getattr(self.log.rules, name)
            kind = w.IntSlider if isinstance(value, int) else w.FloatSlider
            s = kind(value=value, min=lo, max=max(hi, value), step=step, description=name.replace("_", " "),
                     continuous_update=False, style={"description_width": "initial"})
            s.observe(lambda _, n=name: self._reread(n), names="value")
            self.sliders[name] = s
        self.pick.observe(lambda _: self._show_finding(), names="value")
        parts = [self.status, self.summary, self.chart, w.HBox(list(self.sliders.values())[:3]),
                 w.HBox(list(self.sliders.values())[3:]), self.findings, self.pick, self.detail, self.data_box]
        self.widget = w.VBox(parts)
        if data_loss is not None:
            self.set_data_loss(data_loss)
        else:
            self._attribution_reason()
        self._show()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def set_data_loss(self, data_loss) -> None:
        """Show a per-channel loss result beside the curve (see the module docstring)."""
        if isinstance(data_loss, DataLoss) and self._channel_view is None:
            self.panel = DataLossPanel(data_loss, **self._panel_options)
            self.data_loss = data_loss
            self.channels.value = f"<h4>Loss over the data by channel: {escape(source_name(data_loss.source))}</h4>"
            self.data_box.children = (self.channels, self.panel.widget, self.attribution.widget)
            chan = data_loss.channel
            self.attribution.channel = chan if isinstance(chan, str) and chan != "<function>" else None
            self.panel.examples.observe(lambda _: self._attribution_reason(), names="value")
            self.panel.runner.buttons.append(self.attribution.button)  # one job at a time on the models
            self.attribution.runner.buttons[:] = [self.attribution.button, self.panel.diagnose_button]
            self._attribution_reason()
            return
        self.panel = None
        self.data_box.children = (self.channels, self.attribution.widget)
        self._attribution_reason()
        if self._channel_view is not None:
            html = self._channel_view(data_loss)
        elif hasattr(data_loss, "_repr_html_"):
            html = data_loss._repr_html_()
        else:
            html = STYLE + channels_html(data_loss)
        self.data_loss = data_loss
        self.channels.value = "<h4>Loss over the data by channel</h4>" + html

    def _pair(self):
        pair, lab = self._panel_options["pair"], self._panel_options["lab"]
        return tuple(pair) if pair is not None else ((lab.base, lab.tuned) if lab is not None else None)

    def _attribution_missing(self) -> str | None:
        """Why "which examples?" cannot run now (None: it can)."""
        if self._pair() is None:
            return "no models: pass TrainingLab(..., pair=(base, tuned)) or lab=DiagnoseLab(...)"
        if self.panel is None:
            return ("no SFT data: pass TrainingLab(..., data_loss=probe.data_loss((base, tuned), 'train.jsonl')) "
                    "to pick an example from the data")
        if self.panel.dataset is None:
            return (f"the SFT data ({source_name(self.panel.data_loss.source)}) cannot be read here: pass "
                    "dataset= (the file or the records data_loss read)")
        if self.panel.case is None:
            return "pick an example whose record can be read (it is the case)"
        return None

    def _attribution_reason(self) -> None:
        self.attribution.set_reason(self._attribution_missing())

    def _attribution_inputs(self):
        missing = self._attribution_missing()
        if missing:
            raise ValueError(missing)
        return self._pair(), self.panel.case, self.panel.dataset

    def _reread(self, name: str) -> None:
        try:
            self.log = self.log.reread(**{name: self.sliders[name].value})
        except (TypeError, ValueError) as err:  # shown, never a dead widget
            self.status.value = message("error", f"{name}: {err}")
            return
        self._show()

    def _show(self) -> None:
        log = self.log
        self.status.value = message("info", f"{len(log.warnings)} warning(s)")
        self.summary.value = f"<pre>{escape(training_text(log).splitlines()[0])}</pre>"
        show_figure(self.chart, log.figure())
        self.findings.value = STYLE + findings_html(log)
        self.pick.options = [(f"{f.level}: {f.rule}", i) for i, f in enumerate(log.findings)]
        first = next((i for i, f in enumerate(log.findings) if f.level == "warning"), 0)
        self.pick.value = first if log.findings else None
        self._show_finding()

    def _show_finding(self) -> None:
        if self.pick.value is None:
            self.detail.value = ""
            return
        f = self.log.findings[self.pick.value]
        numbers = json.dumps(f.numbers, indent=1, default=str)
        self.detail.value = (f"<div><b>{escape(f.rule)}</b> ({escape(f.level)}): {escape(f.message)}</div>"
                             f"<div>steps marked: {escape(', '.join(map(str, f.steps)) or 'none')}</div>"
                             f'<pre style="max-height:16em;overflow:auto">{escape(numbers)}</pre>')
