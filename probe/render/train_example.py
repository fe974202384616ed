"""One training example of a DataLoss, token by token: the loss change, tuned and base strips.

Pure and escaped, like every view here. An example scored with ``traces=False`` (or not
flagged under ``traces="flagged"``) has its per-token losses but not their tokens: the view
says how to get them.
"""

from __future__ import annotations

from .phrases import p_text
from .safe import escape
from .palette import legend
from .strip import delta_color, strip_html, visible
from .style import styled

NO_TRACES = ("no token traces were kept for this example: run probe.data_loss(..., traces=True) "
             "(traces=\"flagged\" keeps only the flagged examples')")


def _f(x: float) -> str:
    return "-" if x is None or x != x else f"{x:.3f}"


def example_headline(e) -> str:
    flags = f" [{', '.join(e.flags)}]" if e.flags else ""
    return (f"line {e.line} ({e.channel}, {e.shape}): {e.n_scored} scored of {e.n_tokens} tokens; "
            f"mean loss base {_f(e.base_loss)} -> tuned {_f(e.tuned_loss)} nats ({e.change:+.3f}){flags}")


def change_strip(e, *, mark: int | None = None) -> str:
    """The scored tokens colored by the loss change: red where tuning raised the loss, green where
    it lowered it (``delta_color`` of the log-probability change, base loss - tuned loss)."""
    cells = []
    for i, (s, b, t) in enumerate(zip(e.tuned.steps, e.base_losses, e.tuned_losses)):
        title = escape(f"{s.text!r}\nbase loss {b:.3f}\ntuned loss {t:.3f}\nchange {t - b:+.3f}", quote=True)
        cls = "probe-tok probe-div" if i == mark else "probe-tok"
        cells.append(f'<span class="{cls}" data-index="{i}" style="background:{delta_color(b - t)}" '
                     f'title="{title}">{visible(s.text)}</span>')
    return f'<div class="probe-strip">{legend("delta")}{"".join(cells)}</div>'


def example_body(e, *, mark: int | None = None) -> str:
    head = f'<div class="probe-head"><b>{escape(example_headline(e))}</b></div>'
    if e.tuned is None or e.base is None:
        return head + f'<div class="probe-head">{escape(NO_TRACES)}</div>'
    prompt = e.tuned.prompt
    shown = prompt if len(prompt) <= 600 else "..." + prompt[-600:]
    return (head + (f'<details><summary>before the first scored token ({len(prompt)} characters)</summary>'
                    f'<pre style="white-space:pre-wrap">{escape(shown)}</pre></details>' if prompt else "")
            + '<div class="probe-head">loss change (red: tuned loss higher, green: lower)</div>'
            + change_strip(e, mark=mark)
            + f'<div class="probe-head">tuned: {escape(e.tuned.model)}</div>' + strip_html(e.tuned, mark=mark)
            + f'<div class="probe-head">base: {escape(e.base.model)}</div>' + strip_html(e.base, mark=mark))


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
