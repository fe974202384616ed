"""Token strips as self-contained HTML: tokens colored by probability, a tooltip each.

Every piece of model or user text goes through ``html.escape``; no script, no CDN.
"""

from __future__ import annotations

from html import escape

_STYLE = (
    "<style>.probe-strip{font-family:ui-monospace,monospace;line-height:2;white-space:normal}"
    ".probe-tok{display:inline-block;padding:1px 2px;margin:0 1px;border-radius:3px;white-space:pre;position:relative}"
    ".probe-tip{display:none;position:absolute;left:0;top:1.8em;z-index:10;background:#fff;"
    "border:1px solid #999;border-radius:4px;padding:4px 6px;white-space:pre;font-size:85%;"
    "line-height:1.3;box-shadow:0 2px 6px rgba(0,0,0,.2);color:#000}"
    ".probe-tok:hover .probe-tip{display:block}"
    ".probe-forced{border-bottom:2px dashed #555}.probe-div{outline:2px solid #d00}"
    ".probe-ws{color:#888}.probe-head{font-family:sans-serif;font-size:90%;color:#333}</style>"
)


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


def trace_html(trace) -> str:
    head = (
        f"{escape(trace.kind)}: {len(trace.steps)} tokens, total logprob "
        f"{trace.total_logprob:.3f} &middot; {escape(trace.model)}"
    )
    return f'{_STYLE}<div class="probe-head">{head}</div>{strip_html(trace)}'


def divergence_html(d) -> str:
    if not d.diverged:
        head = "No divergence: the model writes the whole reference greedily."
    else:
        head = (
            f"Diverges at token {d.index} after <code>{escape(d.text_before)}</code>: "
            f"reference <code>{escape(d.step.text)}</code> p={d.step.prob:.4f} rank {d.step.rank}; "
            f"preferred <code>{escape(d.preferred.text)}</code> p={d.preferred.prob:.4f}"
        )
    return f'{_STYLE}<div class="probe-head">{head}</div>{strip_html(d.trace, mark=d.index)}'


def trace_divergence_html(d) -> str:
    head = (
        f"Part at char {d.char_offset} after <code>{escape(d.text_before)}</code>"
        if d.diverged
        else "No divergence: both generations wrote the same text."
    )
    return (
        f'{_STYLE}<div class="probe-head">{head}</div>'
        f'<div class="probe-head">a: {escape(d.a.model)}</div>{strip_html(d.a, mark=d.index_a)}'
        f'<div class="probe-head">b: {escape(d.b.model)}</div>{strip_html(d.b, mark=d.index_b)}'
    )


def delta_color(delta: float) -> str:
    """Diverging scale: red where the tuned model lost probability, blue where it gained."""
    x = max(-1.0, min(1.0, delta / 4.0))  # saturate at 4 nats
    hue = 0 if x < 0 else 220
    return f"hsl({hue},75%,{100 - 22 * abs(x):.0f}%)"


def comparison_html(c) -> str:
    cells = []
    for i, s in enumerate(c.segments):
        title = escape(f"base logp={s.base_logprob:.3f}\ntuned logp={s.tuned_logprob:.3f}\n"
                       f"delta={s.delta:+.3f}", quote=True)
        cls = "probe-tok probe-div" if i == c.first_drop else "probe-tok"
        cells.append(f'<span class="{cls}" style="background:{delta_color(s.delta)}" '
                     f'title="{title}">{visible(s.text)}</span>')
    head = (f"tuned vs base: {c.delta_logprob:+.3f} nats in total; red = the tuned model likes it "
            f"less (first drop over {c.threshold:g} nats outlined)")
    return (f'{_STYLE}<div class="probe-head">{escape(head)}</div><div class="probe-strip">{"".join(cells)}</div>'
            f'<div class="probe-head">tuned</div>{strip_html(c.tuned)}'
            f'<div class="probe-head">base</div>{strip_html(c.base)}')
