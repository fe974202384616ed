"""Token strips as self-contained HTML: tokens colored by probability, a tooltip each.

Every piece of model or user text goes through ``probe.render.safe.escape``; no script, no CDN. The
``*_body`` functions leave out the style block (:mod:`probe.render.style`); the ``*_html``
ones, which results' ``_repr_html_`` return, put it first.
"""

from __future__ import annotations

from .safe import escape

from .phrases import as_html, comparison_phrase, divergence_phrase, parting_phrase, trace_facts
from .style import styled


def visible(text: str) -> str:
    """Escaped text with whitespace shown: space as a middle dot, newline, tab."""
    if text == "":
        return '<span class="probe-ws">&#8709;</span>'
    out = escape(text).replace(" ", "&middot;").replace("\t", "&rarr;").replace("\n", "&crarr;")
    return out


def color(prob: float) -> str:
    """Red (improbable) to green (probable) background."""
    hue = max(0.0, min(1.0, prob)) * 120
    return f"hsl({hue:.0f},75%,82%)"


def tooltip(step) -> str:
    """The hover card's text: rank, probability, entropy, flags and the top-k (escaped)."""
    lines = [f"rank {step.rank}   p={step.prob:.4f}   logp={step.logprob:.3f}   H={step.entropy:.2f}"]
    if step.forced:
        lines.append("forced (fed by the caller)")
    if step.straddles:
        lines.append("begins inside the prompt")
    if step.sampled_prob is not None:
        lines.append(f"p after temperature/top-p={step.sampled_prob:.4f}")
    for a in step.top:
        lines.append(f"{a.text!r}  {a.prob:.4f}")
    for name, value in step.watch.items():
        lines.append(f"watch {name!r}: {value:.4f}")
    return escape("\n".join(lines))


def token_span(step, *, mark: bool = False) -> str:
    classes = ["probe-tok"]
    if step.forced:
        classes.append("probe-forced")
    if mark:
        classes.append("probe-div")
    return (
        f'<span class="{" ".join(classes)}" data-index="{step.index}" data-rank="{step.rank}" '
        f'style="background:{color(step.prob)}">{visible(step.text)}'
        f'<span class="probe-tip">{tooltip(step)}</span></span>'
    )


def strip_html(trace, *, mark: int | None = None) -> str:
    tokens = "".join(token_span(s, mark=s.index == mark) for s in trace.steps)
    return f'<div class="probe-strip">{tokens}</div>'


def trace_body(trace) -> str:
    head = f"{escape(trace.kind)}: {as_html(trace_facts(trace))} &middot; {escape(trace.model)}"
    return f'<div class="probe-head">{head}</div>{strip_html(trace)}'


def trace_html(trace) -> str:
    return styled(trace_body(trace))


def divergence_body(d) -> str:
    return f'<div class="probe-head">{as_html(divergence_phrase(d))}</div>{strip_html(d.trace, mark=d.index)}'


def divergence_html(d) -> str:
    return styled(divergence_body(d))


def trace_divergence_body(d) -> str:
    return (
        f'<div class="probe-head">{as_html(parting_phrase(d))}</div>'
        f'<div class="probe-head">a: {escape(d.a.model)}</div>{strip_html(d.a, mark=d.index_a)}'
        f'<div class="probe-head">b: {escape(d.b.model)}</div>{strip_html(d.b, mark=d.index_b)}'
    )


def trace_divergence_html(d) -> str:
    return styled(trace_divergence_body(d))


def delta_color(delta: float) -> str:
    """Diverging scale: red where the tuned model lost probability, blue where it gained."""
    x = max(-1.0, min(1.0, delta / 4.0))  # saturate at 4 nats
    hue = 0 if x < 0 else 220
    return f"hsl({hue},75%,{100 - 22 * abs(x):.0f}%)"


def comparison_body(c) -> str:
    cells = []
    for i, s in enumerate(c.segments):
        title = escape(f"base logp={s.base_logprob:.3f}\ntuned logp={s.tuned_logprob:.3f}\n"
                       f"delta={s.delta:+.3f}", quote=True)
        cls = "probe-tok probe-div" if i == c.first_drop else "probe-tok"
        cells.append(f'<span class="{cls}" style="background:{delta_color(s.delta)}" '
                     f'title="{title}">{visible(s.text)}</span>')
    head = (f"{as_html(comparison_phrase(c))}; red = the tuned model likes it less (first drop over "
            f"{c.threshold:g} nats outlined)")
    return (f'<div class="probe-head">{head}</div><div class="probe-strip">{"".join(cells)}</div>'
            f'<div class="probe-head">tuned</div>{strip_html(c.tuned)}'
            f'<div class="probe-head">base</div>{strip_html(c.base)}')


def comparison_html(c) -> str:
    return styled(comparison_body(c))
