"""Token strips as self-contained HTML: tokens coloured by what they mean, a legend on each,
a hover card per token.

The colours (see :mod:`probe.render.palette`): a generation checked against the expected
answer (:func:`run_strip_html`) is green where it agrees, red and outlined where it leaves
it (the expected token and its probability written beside), grey after; the expected answer
scored token by token goes red to green by P(expected token); a strip with no expected answer
is shaded grey by the model's own confidence, which says nothing of right or wrong. Forced
tokens are hatched and italic.

Every piece of model or user text goes through ``probe.render.safe.escape``; no script, no CDN. The
``*_body`` functions leave out the style block (:mod:`probe.render.style`); the ``*_html``
ones, which results' ``_repr_html_`` return, put it first.
"""

from __future__ import annotations

from .safe import escape

from . import palette
from .palette import AFTER, AGREE, LEAVE, legend
from .phrases import (as_html, comparison_phrase, divergence_phrase, p_text, parting_phrase, show,
    trace_facts)
from .style import styled


def visible(text: str) -> str:
    """Escaped text with whitespace shown: space as a middle dot, newline, tab."""
    if text == "":
        return '<span class="probe-ws">&#8709;</span>'
    out = escape(text).replace(" ", "&middot;").replace("\t", "&rarr;").replace("\n", "&crarr;")
    return out


def color(prob: float) -> str:
    """The probability of the expected (or target) token: red (unwanted) to green (wanted)."""
    return palette.p_expected_color(prob)


delta_color = palette.delta_color  # red where the tuned model lost probability, green where it gained


def tooltip(step) -> str:
    """The hover card's text: rank, probability, entropy, flags and the top-k (escaped)."""
    lines = [f"rank {step.rank}   p={p_text(step.prob)}   logp={step.logprob:.3f}   H={step.entropy:.2f}"]
    if step.forced:
        lines.append("forced (fed by the caller)")
    if step.straddles:
        lines.append("begins inside the prompt")
    if step.sampled_prob is not None:
        lines.append(f"p after temperature/top-p={p_text(step.sampled_prob)}")
    for a in step.top:
        lines.append(f"{a.text!r}  {p_text(a.prob)}")
    for name, value in step.watch.items():
        lines.append(f"watch {name!r}: {p_text(value)}")
    return escape("\n".join(lines))


def token_span(step, *, mark: bool = False, background: str | None = None, beside: str = "",
               extra_class: str = "") -> str:
    """One token: its text, its hover card; ``beside``: what to write after it (the divergence);
    ``extra_class``: a class saying what its colour means (``probe-memorized``)."""
    classes = ["probe-tok"] + ([extra_class] if extra_class else [])
    if step.forced:
        classes.append("probe-forced")
    if mark:
        classes.append("probe-div")
    bg = palette.confidence_color(step.prob) if background is None else background
    want = f'<span class="probe-want">{beside}</span>' if beside else ""
    return (
        f'<span class="{" ".join(classes)}" data-index="{step.index}" data-rank="{step.rank}" '
        f'style="background:{bg}">{visible(step.text)}'
        f'<span class="probe-tip">{tooltip(step)}</span></span>{want}'
    )


def strip_html(trace, *, mark: int | None = None, colour: str | None = None) -> str:
    """A strip of ``trace`` with its legend. ``colour``: "confidence" (the model's own
    probability, no right or wrong) or "expected" (``trace`` is the expected answer scored
    teacher-forced: P(expected token), ``mark`` the first token the model would not write,
    its preferred token beside it). Default: "expected" for a scored trace, else "confidence"."""
    colour = colour or ("expected" if trace.kind == "score" else "confidence")
    spans = []
    for s in trace.steps:
        marked = s.index == mark
        if colour == "expected":
            beside = ""
            if marked and s.preferred is not None:
                beside = f"model prefers <code>{escape(show(s.preferred.text))}</code> p={p_text(s.preferred.prob)}"
            spans.append(token_span(s, mark=marked, background=color(s.prob), beside=beside))
        else:
            spans.append(token_span(s, mark=marked))
    return f'<div class="probe-strip">{legend(colour)}{"".join(spans)}</div>'


def run_parting(run) -> tuple[int, int | None, object | None] | None:
    """Where a generation leaves the expected answer: (char offset, index of the generated token
    there or None where the generation ends first, the expected step there or None where the
    expected answer ends first). None: no expected answer scored, or the generation writes it
    all."""
    exp = run.expected_trace
    if exp is None:
        return None
    got, want = run.trace.text, exp.text
    at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    if at >= len(want):
        return None
    step = next((s for s in run.trace.steps if s.end > at), None)
    expected = next((s for s in exp.steps if s.end > at), None)
    return at, (None if step is None else step.index), expected


def run_strip_html(run) -> str:
    """A generation of a diagnosis, coloured by agreement with the expected answer."""
    if run.expected_trace is None:
        return strip_html(run.trace)
    parting = run_parting(run)
    at = len(run.expected_trace.text) if parting is None else parting[0]
    spans = []
    for s in run.trace.steps:
        leaves = parting is not None and s.index == parting[1] and not run.passed
        beside = ""
        if leaves and parting[2] is not None:
            beside = f"expected <code>{escape(show(parting[2].text))}</code> p={p_text(parting[2].prob)}"
        bg = AGREE if s.end <= at else LEAVE if leaves else AFTER
        spans.append(token_span(s, mark=leaves, background=bg, beside=beside))
    if parting is not None and parting[1] is None and not run.passed and parting[2] is not None:
        spans.append(f'<span class="probe-tok probe-div" style="background:{LEAVE}">(ends)</span>'
                     f'<span class="probe-want">expected <code>{escape(show(parting[2].text))}</code> '
                     f'p={p_text(parting[2].prob)}</span>')
    return f'<div class="probe-strip">{legend("run")}{"".join(spans)}</div>'


def trace_body(trace) -> str:
    head = f"{escape(trace.kind)}: {as_html(trace_facts(trace))} &middot; {escape(trace.model)}"
    return f'<div class="probe-head">{head}</div>{strip_html(trace)}'


def trace_html(trace) -> str:
    return styled(trace_body(trace))


def divergence_body(d) -> str:
    return (f'<div class="probe-head">{as_html(divergence_phrase(d))}</div>'
            f'{strip_html(d.trace, mark=d.index, colour="expected")}')


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


def comparison_body(c) -> str:
    cells = []
    for i, s in enumerate(c.segments):
        title = escape(f"base logp={s.base_logprob:.3f}\ntuned logp={s.tuned_logprob:.3f}\n"
                       f"delta={s.delta:+.3f}", quote=True)
        cls = "probe-tok probe-div" if i == c.first_drop else "probe-tok"
        cells.append(f'<span class="{cls}" style="background:{delta_color(s.delta)}" '
                     f'title="{title}">{visible(s.text)}</span>')
    head = (f"{as_html(comparison_phrase(c))} (first drop over {c.threshold:g} nats outlined)")
    return (f'<div class="probe-head">{head}</div><div class="probe-strip">{legend("delta")}{"".join(cells)}</div>'
            f'<div class="probe-head">tuned</div>{strip_html(c.tuned, colour="expected")}'
            f'<div class="probe-head">base</div>{strip_html(c.base, colour="expected")}')


def comparison_html(c) -> str:
    return styled(comparison_body(c))
