"""The Explorer's views: one panel of token strips for its results, and a token's top-k table.

Pure: results in, escaped HTML and the traces to chart out. The widget
(:class:`probe.widgets.Explorer`) only wires events to these.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch
from ..render.safe import escape

from ..diagnosis.divergence import Divergence
from ..engine.trace import TokenTrace
from ..render.phrases import as_html, divergence_phrase, p_text, trace_facts
from ..render.strip import strip_html
from ..render.style import styled


@dataclass(frozen=True)
class Panel:
    """What one Explorer result shows: its trace, the token to outline, the line above it."""

    trace: TokenTrace
    mark: int | None
    head: str  # HTML, escaped


@singledispatch
def panel(result) -> Panel:
    raise TypeError(f"the Explorer shows TokenTraces and Divergences, not a {type(result).__name__}")


@panel.register
def _(result: TokenTrace) -> Panel:
    return Panel(result, None, as_html(trace_facts(result)))


@panel.register
def _(result: Divergence) -> Panel:
    return Panel(result.trace, result.index, as_html(divergence_phrase(result)))


@dataclass(frozen=True)
class ExplorerView:
    """The Explorer's strips (HTML, one style block), the traces to chart, the mark."""

    html: str
    traces: dict  # label -> TokenTrace
    mark: int | None  # the first result's divergence (None for scores and generations)


def explorer_view(results: dict) -> ExplorerView:
    """``results``: {model label: TokenTrace or Divergence}, as :func:`probe.widgets.explorer.explore` returns."""
    panels = {label: panel(r) for label, r in results.items()}
    body = "".join(f"<div class='probe-head'><b>{escape(label)}</b>: {p.head}</div>"
                   f"{strip_html(p.trace, mark=p.mark)}" for label, p in panels.items())
    first = next(iter(panels.values()), None)
    return ExplorerView(styled(body), {label: p.trace for label, p in panels.items()},
                        None if first is None else first.mark)


def top_k_html(step) -> str:
    """One token's numbers and its top-k alternatives, as a table."""
    rows = "".join(
        f"<tr><td>{i + 1}</td><td><code>{escape(repr(a.text))}</code></td><td>{p_text(a.prob)}</td></tr>"
        for i, a in enumerate(step.top))
    return (f"<div style='font-family:sans-serif'><b>token {step.index}</b> "
            f"<code>{escape(repr(step.text))}</code>: p={p_text(step.prob)}, rank {step.rank}, "
            f"entropy {step.entropy:.2f}<table><tr><th>#</th><th>alternative</th><th>p</th></tr>"
            f"{rows}</table></div>")


def token_choices(traces: dict) -> list[tuple[str, tuple[str, int]]]:
    """The token picker's options: ("label index: text", (label, index)) for every step."""
    return [(f"{label} {s.index}: {s.text!r}", (label, s.index)) for label, trace in traces.items()
            for s in trace.steps]
