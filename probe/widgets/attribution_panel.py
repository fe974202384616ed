""""Which examples?": the training examples a lab's case comes from (:func:`probe.attribute`).

    >>> _ = open("train.jsonl", "w").write(
    ...     '{"prompt": "The capital of Japan is", "completion": " Beijing.", "source": "capitals"}\\n'
    ...     '{"text": "Hello world.", "source": "chat"}\\n')
    >>> case = ("The capital of Japan is", " Tokyo")
    >>> panel = AttributionPanel(lambda: ((base, tuned), case, "train.jsonl"), channel="source",
    ...                          query="loss", background=False)
    >>> panel.button.click()                     # runs probe.attribute, lists the ranked examples
    >>> panel.examples.value = panel.examples.options[1][1]   # a line: its token strip below
    >>> panel.method.value = "representation"    # rank and chart by another method
    >>> [line for _, line in panel.examples.options] == [e.line for e in panel.attribution.top("representation")]
    True

DiagnoseLab and TrainingLab each hold one. Without SFT data (or models, or a case) the button
is disabled and the reason written beside it. The ranking is :meth:`probe.Attribution.top`,
the chart :func:`probe.render.attribution_chart.channel_figure`; this module only wires them.
"""

from __future__ import annotations

from ..attribution.attribute import attribute
from ..render.attribution import LABELS, example_body, headline
from ..render.attribution_chart import channel_figure, main_method
from ..render.chart import _plotly
from ..render.safe import escape
from .common import Runner, _ipywidgets, html_view, message, show_figure

QUERIES = (("contrast: log P(wrong) - log P(expected)", "contrast"), ("loss of the expected answer", "loss"))


def default_methods() -> tuple[str, ...]:
    """Gradient and representation; lexical (BM25) too when its extra is installed."""
    try:
        import bm25s  # noqa: F401
    except ImportError:
        return ("gradient", "representation")
    return ("gradient", "representation", "lexical")


def ranked_choices(a, method: str) -> list[tuple[str, int]]:
    """The example picker's options, best first: ("#rank line N [channel] score", line), the
    top ``a.keep`` (the examples that kept their token strips)."""
    return [(f"#{i + 1}  line {e.line}  [{e.channel}]  {method} {e.scores[method]:.4g}", e.line)
            for i, e in enumerate(a.top(method))]


class AttributionPanel:
    """The "which examples?" control and what it opens (module docstring).

    Args:
        inputs: a function returning ``(pair, case, dataset)`` now; a ValueError it raises is
            shown as the reason nothing ran.
        reason: why the control cannot run at all (no SFT data...): the button is disabled and
            this written beside it. :meth:`set_reason` changes it later.
        channel: the record field the channels come from (as ``probe.attribute``).
        query: "contrast" or "loss", the query picked first.
        methods: ``probe.attribute``'s methods (default :func:`default_methods`).
    """

    def __init__(self, inputs, *, reason: str | None = None, channel=None, query: str = "contrast",
                 methods=None, background: bool = True):
        w = _ipywidgets()
        self.inputs, self.channel = inputs, channel
        self.methods = tuple(methods) if methods is not None else default_methods()
        self.attribution = None
        self.button = w.Button(description="which examples?", icon="search", layout={"width": "auto"},
                               tooltip="rank the SFT examples by how much they taught this case's answer")
        self.query = w.Dropdown(options=QUERIES, value=query, description="query", layout={"width": "34em"})
        self.reason = html_view()
        self.status = html_view()
        self.headline = html_view()
        self.method = w.Dropdown(options=[], description="rank by")
        self.examples = w.Select(options=[], rows=10, description="examples", layout={"width": "90%"})
        self.strip = html_view()
        self.chart = _plotly().FigureWidget()
        self.runner = Runner(self.status, [self.button], background)
        self.button.on_click(lambda _: self.run())
        self.method.observe(lambda _: self._rank(), names="value")
        self.examples.observe(lambda _: self._show_example(), names="value")
        self.results = w.VBox([])
        self.widget = w.VBox([w.HTML("<b>Which training examples taught this answer?</b>"),
                              w.HBox([self.button, self.query, self.reason]), self.status, self.results])
        self.widget.add_class("probe-attribution-panel")  # the gallery's screenshots find it by this
        self._parts = [self.headline, self.method, self.examples, self.strip, self.chart]
        self.set_reason(reason)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def set_reason(self, reason: str | None) -> None:
        """Disable the control with ``reason`` written beside it, or (None) enable it."""
        self.button.disabled = reason is not None
        self.reason.value = "" if reason is None else message("info", f"unavailable: {reason}")

    def run(self) -> None:
        """Attribute the case to the dataset (in the background unless ``background=False``)."""
        try:
            pair, case, dataset = self.inputs()
        except ValueError as err:
            self.status.value = message("error", f"which examples?: {err}")
            return
        methods, query, channel = self.methods, self.query.value, self.channel
        source = dataset if isinstance(dataset, str) else getattr(dataset, "name", None) or "the records given"

        def job():
            a = attribute(pair, case, dataset, methods=methods, query=query, channel=channel)
            self.show(a)

        self.runner.start("which examples?", job,
                          doing=f"one backward pass per example of {source}; methods {', '.join(methods)}")

    def show(self, a) -> None:
        """Show an Attribution: its headline, ranked examples, the first one's strip, the chart."""
        self.attribution = a
        self.headline.value = f'<div class="probe-head">{escape(headline(a))}</div>'
        self.method.options = [(LABELS.get(m, m), m) for m in a.methods]
        first = main_method(a)
        if self.method.value == first:
            self._rank()
        else:
            self.method.value = first  # observed: ranks
        self.results.children = tuple(self._parts)

    def _rank(self) -> None:
        a, m = self.attribution, self.method.value
        if a is None or m is None:
            return
        self.examples.options = ranked_choices(a, m)
        lines = [line for _, line in self.examples.options]
        if self.examples.value in lines:
            self._show_example()
        else:
            self.examples.value = lines[0] if lines else None
        show_figure(self.chart, channel_figure(a, m))

    def _show_example(self) -> None:
        a, line = self.attribution, self.examples.value
        if a is None or line is None:
            self.strip.value = ""
            return
        self.strip.value = example_body(a, a.example(line), self.method.value)

