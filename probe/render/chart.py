"""Per-token charts (plotly): logprob of one or two models along an answer, watched strings'
probabilities as extra lines, the divergence point marked. Pure: results in, figure out.

    >>> traces = [probe.score(m, "The capital of France is", " Paris") for m in (base, tuned)]
    >>> fig = trace_figure(traces, labels=["base", "tuned"], mark=1)
"""

from __future__ import annotations

from .phrases import p_text
from .palette import MODEL_COLORS
from .safe import escape


def _plotly():
    try:
        import plotly.graph_objects as go
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("charts need plotly: pip install 'token-probe[notebook]'") from err
    return go


LEAVE_LINE, AGREE_LINE = "#c62828", "#2e7d32"  # red: worse / leaves expected; green: better


def _line(label: str) -> dict:
    """The models' colours, the same in every chart (tuned blue, base grey dashed)."""
    key = next((m for m in MODEL_COLORS if m in str(label).lower()), None)
    if key is None:
        return {}
    return {"color": MODEL_COLORS[key], "dash": "dash" if key == "base" else "solid"}


def _label(text: str) -> str:
    return escape(text.replace("\n", "\u21b5").replace(" ", "\u00b7") or "\u2205")


def _hover(step) -> str:
    alts = "<br>".join(f"{escape(repr(a.text))} {p_text(a.prob)}" for a in step.top)
    return (f"<b>{_label(step.text)}</b><br>p={p_text(step.prob)} rank {step.rank} "
            f"H={step.entropy:.2f}<br>{alts}")


def trace_figure(traces, labels=None, mark: int | None = None, title: str = ""):
    """logprob per token for each trace (same x: token index), watched strings on a 2nd axis.

    Args:
        traces: a TokenTrace or a list of them (e.g. base and tuned on the same answer).
        labels: one legend name per trace (default: each trace's model name).
        mark: a token index to mark (the first divergence).
    """
    go = _plotly()
    traces = traces if isinstance(traces, (list, tuple)) else [traces]
    labels = labels or [t.model or f"trace {i}" for i, t in enumerate(traces)]
    fig = go.Figure()
    for trace, label in zip(traces, labels):
        steps = trace.steps
        fig.add_trace(go.Scatter(
            x=[s.index for s in steps], y=[s.logprob for s in steps], mode="lines+markers",
            name=f"{label}: log p", line=_line(label), customdata=[s.index for s in steps],
            text=[_hover(s) for s in steps], hovertemplate="%{text}<extra></extra>",
        ))
        for name in sorted({w for s in steps for w in s.watch}):
            fig.add_trace(go.Scatter(
                x=[s.index for s in steps if name in s.watch],
                y=[s.watch[name] for s in steps if name in s.watch],
                mode="lines", line={"dash": "dot"}, yaxis="y2", name=f"{label}: P({name!r})",
            ))
    first = traces[0].steps
    fig.update_layout(
        title=escape(title), hovermode="closest", height=360, margin={"l": 50, "r": 50, "t": 40, "b": 80},
        xaxis={"tickmode": "array", "tickvals": [s.index for s in first],
               "ticktext": [_label(s.text) for s in first], "title": "token"},
        yaxis={"title": "log p"},
        yaxis2={"title": "P(watched)", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.35},
    )
    if mark is not None:
        fig.add_vline(x=mark, line={"color": LEAVE_LINE, "dash": "dot"}, annotation_text="diverges")
    return fig


def comparison_figure(comparison):
    """Base and tuned log-probabilities per aligned segment, the first drop marked."""
    go = _plotly()
    segs = comparison.segments
    x = list(range(len(segs)))
    fig = go.Figure()
    for name, values in (("base", [s.base_logprob for s in segs]), ("tuned", [s.tuned_logprob for s in segs])):
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=f"{name}: log p", line=_line(name)))
    fig.add_trace(go.Bar(x=x, y=[s.delta for s in segs], name="tuned - base (red: tuned likes it less)",
                         opacity=0.5, marker={"color": [LEAVE_LINE if s.delta < 0 else AGREE_LINE for s in segs]}))
    fig.update_layout(height=340, xaxis={"tickmode": "array", "tickvals": x,
                                         "ticktext": [_label(s.text) for s in segs]},
                      yaxis={"title": "log p"}, legend={"orientation": "h", "y": -0.3})
    if comparison.first_drop is not None:
        fig.add_vline(x=comparison.first_drop, line={"color": LEAVE_LINE, "dash": "dot"}, annotation_text="first drop")
    return fig
