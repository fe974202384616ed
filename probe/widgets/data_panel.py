"""The data side of TrainingLab: channel -> its examples -> token strips -> diagnose the case.

    >>> _ = open("train.jsonl", "w").write(
    ...     '{"prompt": "2 + 2 =", "completion": " 4", "source": "math"}\\n{"messages": [{"role": "user", '
    ...     '"content": "Hi"}, {"role": "assistant", "content": "Hello."}], "source": "chat"}\\n')
    >>> panel = DataLossPanel(probe.data_loss((base, tuned), "train.jsonl", channel="source"),
    ...                       pair=(base, tuned), background=False)
    >>> panel.channel.value = "chat"           # its examples, listed by loss change
    >>> panel.examples.value = 2               # line 2: the loss change, tuned and base strips
    >>> panel.token.value = 3                  # token 3 under both models
    >>> panel.diagnose_button.click()          # the example's prompt and answer to probe.diagnose
    >>> panel.diagnosis.prompt, panel.diagnosis.expected
    ('Hi', 'Hello.')

The case sent to diagnose is the record's prompt (what comes before the scored answer) and its
answer as the expected one (:mod:`probe.train.example_case`), read again from the dataset
(``dataset=`` for one given to ``data_loss`` as an iterable). With ``force`` ticked, the
answer up to the picked token is forced (when the token lies inside the answer). With a
:class:`DiagnoseLab` (``lab=``) the case fills its fields and runs there; with ``pair=`` the
card shows here; with neither, the case is shown with the call to make.
"""

from __future__ import annotations

import os

from ..diagnosis.run import diagnose
from ..render.card import diagnosis_html
from ..render.style import STYLE
from ..render.train_example import example_body, token_body
from ..render.train_loss import _groups_html
from ..train.example_case import case_of, records_at, shape_of
from .common import html_view, Runner, _ipywidgets, message

ORDERS = {  # label -> sort key of an ExampleLoss
    "largest loss drop first": lambda e: (e.change, e.line),
    "largest loss rise first": lambda e: (-e.change, e.line),
    "highest tuned loss first": lambda e: (-e.tuned_loss, e.line),
    "line": lambda e: e.line,
}
MAX_LISTED = 500  # examples listed per channel (the rest: say how many)


def channel_choices(dl) -> list[tuple[str, str]]:
    """The channel picker's options: (label with its numbers, channel name)."""
    return [(f"{g.name}: {g.examples} ex, loss {g.base_loss:.3f} -> {g.tuned_loss:.3f} ({g.change:+.3f})"
             + (" OUTLIER" if g.outlier else ""), g.name) for g in dl.channels]


def channel_examples(dl, channel: str, order: str = "largest loss drop first") -> list:
    """The examples of ``channel`` in ``order`` (a key of ORDERS)."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {list(ORDERS)}, got {order!r}")
    return sorted((e for e in dl.examples if e.channel == channel), key=ORDERS[order])


def example_choices(examples) -> list[tuple[str, int]]:
    """The example picker's options: (label, line)."""
    return [(f"line {e.line}: {e.n_scored} tok, {e.base_loss:.3f} -> {e.tuned_loss:.3f} ({e.change:+.3f})"
             + (f" [{', '.join(e.flags)}]" if e.flags else "") + ("" if e.tuned is not None else " (no trace)"),
             e.line) for e in examples[:MAX_LISTED]]


def token_choices(e) -> list[tuple[str, int]]:
    """The token picker's options: (index: text, base -> tuned loss), or none without traces."""
    if e.tuned is None:
        return []
    return [(f"{i}: {s.text!r}  {b:.2f} -> {t:.2f}", i)
            for i, (s, b, t) in enumerate(zip(e.tuned.steps, e.base_losses, e.tuned_losses))]


def biggest_rise(e) -> int | None:
    """The token whose loss tuning raised most; where none rose by 0.005 nats (it would read
    "+0.00"), the token tuning changed most either way (None without traces)."""
    if e.tuned is None:
        return None
    rise = max(range(e.n_scored), key=lambda i: (e.tuned_losses[i] - e.base_losses[i], -i))
    if e.tuned_losses[rise] - e.base_losses[rise] >= 0.005:
        return rise
    return max(range(e.n_scored), key=lambda i: (abs(e.tuned_losses[i] - e.base_losses[i]), -i))


def force_before(e, expected: str, index: int) -> str | None:
    """The expected answer up to token ``index`` of the example, if that token lies inside the
    answer's last occurrence in the example's text (else None: nothing sensible to force)."""
    if e.tuned is None or not expected:
        return None
    full = e.tuned.prompt + e.tuned.text
    at = full.rfind(expected)
    if at < 0:
        return None
    start = len(e.tuned.prompt) + e.tuned.steps[index].start
    if at < start < at + len(expected):
        return expected[:start - at]
    return None


def format_note(case, lm, record=None) -> str:
    """A warning when diagnose would ask the case in another format than it was trained in: a
    prompt/completion string pair is trained as raw text, but a chat model's diagnose renders a
    string prompt through its chat template. ``record``: the example's record, whose prompt
    says what was trained (a single user message shows as text in the case, but was chat)."""
    if lm is None or not getattr(lm, "chat", False):
        return ""
    raw = case.prompt if record is None or not isinstance(record, dict) else record.get("prompt")
    if case.shape == "prompt_completion" and isinstance(raw, str):
        return ("this example was trained as raw text (prompt + completion), but diagnose asks a chat "
                "model through its chat template: load the pair with chat=False to ask it as trained")
    return ""


def case_html(case, force: str | None) -> str:
    from html import escape

    prompt = case.prompt if isinstance(case.prompt, str) else "\n".join(
        f"[{m['role']}] {m['content']}" for m in case.prompt)
    rows = [("prompt", prompt), ("expected", case.expected)] + ([("force", repr(force))] if force else [])
    return "<table class=\"probe-reg\">" + "".join(
        f"<tr><td>{k}</td><td style=\"text-align:left\"><pre style=\"white-space:pre-wrap;margin:0\">"
        f"{escape(v)}</pre></td></tr>"
        for k, v in rows) + "</table>"


class DataLossPanel:
    """Browse a DataLoss by channel, example and token; send an example to diagnose."""

    def __init__(self, data_loss, *, pair=None, lab=None, dataset=None, background: bool = True):
        w = _ipywidgets()
        if pair is not None and (not isinstance(pair, (tuple, list)) or len(pair) != 2):
            raise TypeError("pair must be (base, tuned)")
        self.data_loss, self.pair, self.lab = data_loss, pair, lab
        self.dataset = dataset if dataset is not None else (
            data_loss.source if os.path.isfile(str(data_loss.source)) else None)
        self.shown: list = []  # the listed examples
        self._records: dict = {}  # line -> record, for the listed examples (read on first need)
        self.case = None
        self.diagnosis = None
        self.table = html_view(STYLE + _groups_html(f"by channel ({data_loss.channel or 'none'})", data_loss.channels)
                            + _groups_html("by token kind", data_loss.kinds))
        self.channel = w.Select(description="channel", options=channel_choices(data_loss),
                                rows=min(8, max(2, len(data_loss.channels))), layout={"width": "60%"})
        self.order = w.Dropdown(description="order", options=list(ORDERS), value=next(iter(ORDERS)))
        self.examples = w.Select(description="example", options=[], rows=8, layout={"width": "60%"})
        self.count = html_view()
        self.view = html_view()
        self.token = w.Dropdown(description="token", options=[], layout={"width": "40%"})
        self.token_view = html_view()
        self.force = w.Checkbox(value=False, description="force the answer up to the token")
        self.max_new_tokens = w.IntSlider(value=32, min=1, max=256, description="new tokens")
        self.diagnose_button = w.Button(description="diagnose this case", button_style="primary")
        self.case_view = html_view()
        self.status = html_view()
        self.card = html_view()
        self.runner = Runner(self.status, [self.diagnose_button], background)
        self.channel.observe(lambda _: self._list(), names="value")
        self.order.observe(lambda _: self._list(), names="value")
        self.examples.observe(lambda _: self._show_example(), names="value")
        self.token.observe(lambda _: self._show_token(), names="value")
        self.force.observe(lambda _: self._show_case(), names="value")
        self.diagnose_button.on_click(lambda _: self.send())
        self.widget = w.VBox([self.table, w.HBox([self.channel, self.order]), self.count, self.examples,
                              self.view, self.token, self.token_view,
                              w.HBox([self.diagnose_button, self.force, self.max_new_tokens]),
                              self.case_view, self.status, self.card])
        if data_loss.channels:
            self.channel.value = data_loss.channels[0].name
        self._list()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    @property
    def example(self):
        return next((e for e in self.shown if e.line == self.examples.value), None)

    def _list(self) -> None:
        if self.channel.value is None:
            return
        self.shown = channel_examples(self.data_loss, self.channel.value, self.order.value)
        more = len(self.shown) - MAX_LISTED
        self.count.value = message("info", f"{len(self.shown)} example(s) in {self.channel.value}"
                                   + (f"; the first {MAX_LISTED} listed" if more > 0 else ""))
        keep = self.examples.value
        self.examples.options = example_choices(self.shown)
        lines = [line for _, line in self.examples.options]
        self.examples.value = keep if keep in lines else (lines[0] if lines else None)
        self._show_example()

    def _show_example(self) -> None:
        e = self.example
        self.case, self.card.value, self.status.value = None, "", ""
        if e is None:
            self.view.value = self.token_view.value = self.case_view.value = ""
            self.token.options = []
            return
        self.token.options = token_choices(e)
        self.token.value = biggest_rise(e)
        self.view.value = STYLE + example_body(e, mark=self.token.value)
        self._show_token()
        try:
            if self.dataset is None:
                raise ValueError(f"the dataset ({self.data_loss.source}) cannot be read here: pass dataset= "
                                 "(the file or the records data_loss read)")
            record = self._record(e.line)
            if shape_of(record) != e.shape:
                raise ValueError(f"the record there is a {shape_of(record)} record, the scored one was a "
                                 f"{e.shape} record: has the file changed since?")
            self.case = case_of(record, e.line)
        except (ValueError, OSError) as err:
            self.case_view.value = message("error", f"cannot make a case of line {e.line}: {err}")
            self.diagnose_button.disabled = True
            return
        self.diagnose_button.disabled = False
        self._show_case()

    def _record(self, line: int):
        """The record at ``line``: the listed examples' records are read in one pass per channel."""
        if line not in self._records:
            listed = [ln for _, ln in self.examples.options]
            try:
                self._records = records_at(self.dataset, listed if line in listed else [line])
            except ValueError:  # one of the others is not readable: this one alone says why, or works
                self._records = records_at(self.dataset, [line])
        return self._records[line]

    def _show_token(self) -> None:
        e = self.example
        if e is None or self.token.value is None:
            self.token_view.value = ""
            return
        self.view.value = STYLE + example_body(e, mark=self.token.value)
        self.token_view.value = token_body(e, self.token.value)
        self._show_case()

    def force_text(self) -> str | None:
        """What ``force`` sends: the answer up to the picked token, when ticked and inside it."""
        e = self.example
        if not self.force.value or self.case is None or e is None or self.token.value is None:
            return None
        return force_before(e, self.case.expected, self.token.value)

    def _show_case(self) -> None:
        if self.case is None:
            return
        force = self.force_text()
        note = "" if not self.force.value or force else message(
            "info", "the picked token is not inside the expected answer (or is its first token): nothing forced")
        lm = self.pair[1] if self.pair is not None else getattr(self.lab, "tuned", None)
        said = format_note(self.case, lm, self._records.get(self.example.line) if self.example else None)
        if said:
            note += message("info", said)
        if self.lab is None and self.pair is None:
            note += message("info", "pass pair=(base, tuned) or lab=DiagnoseLab(...) to diagnose here; or run "
                            "probe.diagnose(base, tuned, prompt, expected=expected)")
        self.case_view.value = STYLE + "<div class=\"probe-head\">the case</div>" + case_html(self.case, force) + note

    def send(self) -> None:
        """Diagnose the picked example: in the DiagnoseLab (``lab=``) or here (``pair=``)."""
        case, force = self.case, self.force_text()
        if case is None:
            self.status.value = message("error", "pick an example whose record can be read first")
            return
        if self.lab is not None:
            if case.multi_turn:
                self.status.value = message("error", "this prompt has several messages; DiagnoseLab takes one "
                                            "user message: pass pair=(base, tuned) to diagnose it here")
                return
            self.lab.prompt.value, self.lab.expected.value = case.prompt, case.expected
            self.lab.force.value = force or ""
            self.lab.check.value = "answer expected"
            self.lab.run()
            self.status.value = message("ok", f"line {case.line} sent to the DiagnoseLab")
            return
        if self.pair is None:
            self.status.value = message("error", "no models: pass pair=(base, tuned) or lab=DiagnoseLab(...)")
            return
        base, tuned = self.pair
        n = self.max_new_tokens.value
        prompt = case.prompt if isinstance(case.prompt, str) else [dict(m) for m in case.prompt]

        def job():
            self.diagnosis = diagnose(base, tuned, prompt, expected=case.expected, force=force,
                                      max_new_tokens=n, case_id=f"line-{case.line}")
            self.card.value = diagnosis_html(self.diagnosis)

        self.runner.start(f"diagnose line {case.line}", job)
