"""Explorer: score, generate or find the first divergence, and see it token by token.

    >>> ex = Explorer(base, tuned)
    >>> ex.prompt.value, ex.answer.value = "What is the capital of France?", "Paris."
    >>> ex.run_button.click()
    >>> ex.runner.wait()            # in a script; in a notebook the result simply shows up

Token strips (hover a token: rank, probability, entropy, top-k), a per-token chart (click a
point: its top-k table), and "save as bad case" (into a :class:`probe.Casebook`, with a note
and tags).
"""

from __future__ import annotations

from ..cases.case import Case
from ..cases.casebook import open_casebook
from ..diagnosis.divergence import first_divergence
from ..engine.generation import generate
from ..render.chart import trace_figure
from .panels import explorer_view, token_choices, top_k_html
from ..engine.scoring import score
from ..core.vocab import ExplorerMode, words
from .common import html_view, Runner, _ipywidgets, message, show_figure

MODES = words(ExplorerMode)


def explore(models: dict, mode: ExplorerMode, prompt: str, answer: str, *, force: str = "", watch=(),
            top_k: int = 5, max_new_tokens: int = 32) -> dict:
    """The computation behind the Explorer: {model label: TokenTrace or Divergence}."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode != "generate" and not answer:
        raise ValueError(f"{mode} needs a target/reference answer")
    out = {}
    for label, lm in models.items():
        if mode == "score":
            out[label] = score(lm, prompt, answer, top_k=top_k)
        elif mode == "generate":
            out[label] = generate(lm, prompt, max_new_tokens=max_new_tokens, force=force,
                                  watch=list(watch), top_k=top_k)
        else:
            out[label] = first_divergence(lm, prompt, answer, top_k=top_k)
    return out


def typed(text: str) -> str:
    """A one-line text box's value with \\n and \\t typed as escapes turned into the characters."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


top_k_table = top_k_html  # the old name


class Explorer:
    """Interactive token-level view of one or two models (see the module docstring)."""

    def __init__(self, base, tuned=None, *, book="bad-cases", background: bool = True):
        w = _ipywidgets()
        import plotly.graph_objects as go

        self.models = {"base": base} if tuned is None else {"base": base, "tuned": tuned}
        self.book = open_casebook(book)
        self.results: dict = {}
        self.traces: dict = {}  # label -> the TokenTrace shown (a Divergence's reference trace)
        self.prompt = w.Textarea(description="prompt", layout={"width": "100%"})
        self.answer = w.Textarea(description="target", placeholder="target / reference answer",
                                 layout={"width": "100%"})
        self.mode = w.ToggleButtons(options=MODES, value="score", description="mode")
        self.force = w.Text(description="force", placeholder='e.g. ```json\\n (generate)')
        self.watch = w.Text(description="watch", placeholder="comma-separated strings (generate)")
        self.top_k = w.IntSlider(value=5, min=1, max=20, description="top-k")
        self.max_new_tokens = w.IntSlider(value=32, min=1, max=256, description="new tokens")
        choices = ["base"] if tuned is None else ["tuned", "base", "both"]
        self.which = w.ToggleButtons(options=choices, value=choices[0], description="model")
        self.run_button = w.Button(description="Run", button_style="primary")
        self.save_button = w.Button(description="save as bad case", disabled=True)
        self.note = w.Text(description="note", placeholder="why this case is bad (saved with it)")
        self.tags = w.Text(description="tags", placeholder="comma-separated")
        self.status = html_view(message("info", "Enter a prompt and press Run."))
        self.strips = html_view()
        self.token = w.Dropdown(description="token", options=[])
        self.detail = html_view()
        self.chart = go.FigureWidget()
        self.runner = Runner(self.status, [self.run_button], background)
        self.run_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        self.token.observe(lambda change: self._show_token(change["new"]), names="value")
        self.widget = w.VBox([
            self.prompt, self.answer, self.mode, w.HBox([self.force, self.watch]),
            w.HBox([self.top_k, self.max_new_tokens]), self.which,
            w.HBox([self.run_button, self.save_button, self.note, self.tags]), self.status, self.strips,
            self.chart, w.HBox([self.token]), self.detail,
        ])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _chosen(self) -> dict:
        if self.which.value == "both":
            return {"tuned": self.models["tuned"], "base": self.models["base"]}
        return {self.which.value: self.models[self.which.value]}

    def run(self) -> None:
        """Compute with the current settings and show the result (in a thread by default)."""
        watch = [x for x in (s.strip() for s in self.watch.value.split(",")) if x]
        args = dict(mode=self.mode.value, prompt=self.prompt.value, answer=self.answer.value,
                    force=typed(self.force.value), watch=watch, top_k=self.top_k.value,
                    max_new_tokens=self.max_new_tokens.value)
        models = self._chosen()

        def job():
            self.results = explore(models, **args)
            self._render()
            self.save_button.disabled = False

        self.runner.start(self.mode.value, job)

    def _render(self) -> None:
        view = explorer_view(self.results)
        self.traces = view.traces
        self.strips.value = view.html
        fig = trace_figure(list(view.traces.values()), labels=list(view.traces), mark=view.mark)
        show_figure(self.chart, fig, self._on_chart_click)
        self.token.options = token_choices(view.traces)
        if self.token.options:
            self.token.value = self.token.options[0][1]
            self._show_token(self.token.value)

    def _on_chart_click(self, trace, points, _state) -> None:
        if points.point_inds and trace.customdata is not None:
            label = trace.name.split(":")[0]
            self.token.value = (label, int(trace.customdata[points.point_inds[0]]))

    def _show_token(self, key) -> None:
        if not key:
            return
        label, index = key
        self.detail.value = top_k_html(self.traces[label].steps[index])

    def save(self) -> Case:
        """Save the current inputs and results as a bad case in the casebook."""
        if not self.results:
            raise ValueError("nothing to save yet: run first")
        answer = self.answer.value or None
        inputs = {"expected": answer} if self.mode.value != "generate" else {"force": typed(self.force.value) or None}
        case = Case.from_result(dict(self.results), models=self._chosen(), prompt=self.prompt.value,
                                note=self.note.value, tags=split_tags(self.tags.value),
                                title=f"{self.mode.value}: {self.prompt.value[:40]}", **inputs)
        self.book.add(case)
        self.status.value = message("ok", f"saved case {case.id} in {self.book.folder}")
        return case


def split_tags(text: str) -> list[str]:
    return [t for t in (x.strip() for x in text.split(",")) if t]
