"""The tokens a model is given (ModelInput) as an escaped HTML strip: special tokens and the
answer marked, each token's position and id on hover."""

from __future__ import annotations

from .safe import escape

from .strip import visible
from .style import styled


def inputs_body(seen) -> str:
    spans = []
    for i, (tid, text, special) in enumerate(zip(seen.ids, seen.tokens, seen.special)):
        style = "background:#e4e4f7" if special else ("background:#dff3df" if i >= seen.n_prompt else "background:#eee")
        tip = escape(f"position {i}   id {tid}" + ("   special" if special else "")
                     + ("   answer" if i >= seen.n_prompt else ""))
        spans.append(f'<span class="probe-tok" style="{style}">{visible(text)}'
                     f'<span class="probe-tip">{tip}</span></span>')
    head = escape(str(seen).splitlines()[0])
    notes = "".join(f"<li>{escape(n)}</li>" for n in seen.notes)
    return (f'<div class="probe-head">{head}</div><div class="probe-strip">{"".join(spans)}</div>'
            + (f'<ul class="probe-head">{notes}</ul>' if notes else ""))


def inputs_html(seen) -> str:
    return styled(inputs_body(seen))
