"""One training example of a DataLoss, token by token: the loss change, tuned and base strips.

Pure and escaped, like every view here. An example scored with ``traces=False`` (or not
flagged under ``traces="flagged"``) has its per-token losses but not their tokens: the view
says how to get them.
"""

from __future__ import annotations

from .phrases import p_text
from .safe import escape
from .palette import MEMORIZED, confidence_color, learned_delta_color, legend
from .strip import token_span, visible
from .style import styled

NO_TRACES = ("no token traces were kept for this example: run probe.data_loss(..., traces=True) "
             "(traces=\"flagged\" keeps only the flagged examples')")
MEMORIZED_NOTE = ("memorized: the tuned model's loss on this example is very low, it recites it. That says it "
                  "learned the example, not that the example is right: a wrong fact recited is memorized too")


def _f(x: float) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def memorized(e) -> bool:
    """The example is flagged memorized (``probe.train.channels``: a very low tuned loss)."""
    return "memorized" in e.flags


def example_headline(e) -> str:
    flags = f" [{', '.join(e.flags)}]" if e.flags else ""
    return (f"line {e.line} ({e.channel}, {e.shape}): {e.n_scored} scored of {e.n_tokens} tokens; "
            f"mean loss base {_f(e.base_loss)} -> tuned {_f(e.tuned_loss)} nats ({e.change:+.3f}){flags}")


def memorized_badge(e) -> str:
    """An amber "memorized" badge (not green: learned is not right), its meaning on hover."""
    if not memorized(e):
        return ""
    return (f'<span class="probe-badge probe-memorized" style="background:{MEMORIZED};color:#111" '
            f'title="{escape(MEMORIZED_NOTE)}">memorized</span>')


def change_strip(e, *, mark: int | None = None) -> str:
    """The scored tokens coloured by the loss change, with no right or wrong (a training
    example's text is what the model was taught, true or not): blue where tuning raised the
    token's probability (lowered its loss), orange where it lowered it."""
    cells = []
    for i, (s, b, t) in enumerate(zip(e.tuned.steps, e.base_losses, e.tuned_losses)):
        title = escape(f"{s.text!r}\nbase loss {b:.3f}\ntuned loss {t:.3f}\nchange {t - b:+.3f}", quote=True)
        cls = "probe-tok probe-div" if i == mark else "probe-tok"
        cells.append(f'<span class="{cls}" data-index="{i}" style="background:{learned_delta_color(b - t)}" '
                     f'title="{title}">{visible(s.text)}</span>')
    return f'<div class="probe-strip">{legend("training-delta")}{"".join(cells)}</div>'


def learned_strip(trace, *, mark: int | None = None, recited: bool = False) -> str:
    """A training example's own tokens under one model: grey by the model's P(token) (learned,
    never judged right or wrong); amber (``probe-memorized``) where ``recited``: the tuned model
    on an example flagged memorized."""
    spans = [token_span(s, mark=s.index == mark, background=MEMORIZED if recited else confidence_color(s.prob),
                        extra_class="probe-memorized" if recited else "") for s in trace.steps]
    return f'<div class="probe-strip">{legend("training")}{"".join(spans)}</div>'


def example_body(e, *, mark: int | None = None) -> str:
    badge = memorized_badge(e)
    head = f'<div class="probe-head"><b>{escape(example_headline(e))}</b>{" " + badge if badge else ""}</div>'
    if badge:
        head += f'<div class="probe-head">{escape(MEMORIZED_NOTE)}</div>'
    if e.tuned is None or e.base is None:
        return head + f'<div class="probe-head">{escape(NO_TRACES)}</div>'
    prompt = e.tuned.prompt
    shown = prompt if len(prompt) <= 600 else "..." + prompt[-600:]
    return (head + (f'<details><summary>before the first scored token ({len(prompt)} characters)</summary>'
                    f'<pre style="white-space:pre-wrap">{escape(shown)}</pre></details>' if prompt else "")
            + '<div class="probe-head">loss change (blue: tuned loss lower, orange: higher)</div>'
            + change_strip(e, mark=mark)
            + f'<div class="probe-head">tuned: {escape(e.tuned.model)}</div>'
            + learned_strip(e.tuned, mark=mark, recited=memorized(e))
            + f'<div class="probe-head">base: {escape(e.base.model)}</div>' + learned_strip(e.base, mark=mark))


def example_html(e, *, mark: int | None = None) -> str:
    return styled(example_body(e, mark=mark))


def _side(name: str, step, loss: float) -> str:
    alts = ", ".join(f"{a.text!r} {a.prob:.3f}" for a in step.top)
    return (f"<tr><td>{escape(name)}</td><td>{loss:.3f}</td><td>{p_text(step.prob)}</td><td>{step.rank}</td>"
            f"<td><code>{escape(alts)}</code></td></tr>")


def token_body(e, index: int) -> str:
    """One scored token under both models: loss, probability, rank, top-k."""
    if e.tuned is None or e.base is None:
        return ""
    s = e.tuned.steps[index]
    b, t = e.base_losses[index], e.tuned_losses[index]
    return (f'<div class="probe-head">token {index} <code>{escape(repr(s.text))}</code>: loss change '
            f"{t - b:+.3f}</div><table class=\"probe-reg\"><tr><th>model</th><th>loss</th><th>p</th>"
            f"<th>rank</th><th>top-k</th></tr>{_side('tuned', e.tuned.steps[index], t)}"
            f"{_side('base', e.base.steps[index], b)}</table>")
