"""Training logs as text, escaped HTML, inline SVG and plotly: the loss curve with its epoch
bands and each finding marked, and the table of readings.

Pure functions of a :class:`probe.train.log.TrainingLog`; no script; every piece of text from
the log (its path, channel names) goes through ``html.escape``.
"""

from __future__ import annotations

import math
from html import escape

from .chart import _plotly
from .style import styled

LEVEL_COLORS = {"warning": "#c62828", "info": "#1565c0", "ok": "#2e7d32", "skipped": "#777"}
BAND = "#eef2f7"
TRAIN, EVAL, LR = "#1565c0", "#ef6c00", "#888"


def _head(log) -> str:
    steps = log.steps
    epochs = f", {log.n_epochs:.3g} epochs" if log.n_epochs is not None else ""
    evals = f", {len(log.eval)} eval points" if log.eval else ""
    chans = f", channels: {', '.join(log.channels)}" if log.channels else ""
    n = len(steps)
    return f"{n} train loss point{'s' if n != 1 else ''}, steps {steps[0]}..{steps[-1]}{epochs}{evals}{chans}"


def training_text(log) -> str:
    lines = [f"Training log {log.source} ({log.format}): {_head(log)}"]
    if log.boundaries:
        lines.append("  epoch starts at steps " + ", ".join(str(b) for b in log.boundaries[:20])
                     + (" ..." if len(log.boundaries) > 20 else ""))
        lines.append("  mean train loss by epoch: " + ", ".join(f"{m:.4g}" for _, _, _, m in log.epoch_means()[:20]))
    lines += [f"  {f}" for f in log.findings if f.level != "skipped"]
    skipped = [f.rule for f in log.findings if f.level == "skipped"]
    if skipped:
        lines.append(f"  not read: {', '.join(skipped)} (see .findings)")
    return "\n".join(lines)


def findings_html(log) -> str:
    rows = "".join(
        f'<tr data-rule="{escape(f.rule, quote=True)}" data-level="{f.level}"><td>'
        f'<span class="probe-badge" style="background:{LEVEL_COLORS.get(f.level, "#555")}">{escape(f.level)}</span>'
        f'</td><td><code>{escape(f.rule)}</code></td><td class="l">{escape(f.message)}</td></tr>'
        for f in log.findings)
    return (f'<table class="probe-data probe-findings"><tr><th>level</th><th>rule</th><th class="l">reading'
            f'</th></tr>{rows}</table>')


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _thin(steps, values, most: int = 1500):
    """At most about ``most`` points for a polyline: each bucket's lowest and highest point, in
    step order (a spike survives thinning)."""
    n = len(steps)
    if n <= most:
        return list(zip(steps, values))
    size = math.ceil(n / (most // 2))
    out = []
    for a in range(0, n, size):
        idx = range(a, min(a + size, n))
        lo, hi = min(idx, key=lambda i: values[i]), max(idx, key=lambda i: values[i])
        out += [(steps[i], values[i]) for i in sorted({lo, hi})]
    return out


def loss_svg(log, *, width: int = 640, height: int = 220) -> str:
    """Train loss (line), eval loss (dots), epoch bands, findings marked (inline SVG, no script)."""
    steps, losses = log.steps, log.losses
    ys = list(losses) + [p.loss for p in log.eval]
    x0, x1 = min(steps[0], *(p.step for p in log.eval)) if log.eval else steps[0], steps[-1]
    if log.eval:
        x1 = max(x1, log.eval[-1].step)
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.05 or 0.05
    left, right, top, bottom = 46, width - 10, 10, height - 28
    X, Y = _scale(x0, x1, left, right), _scale(lo - pad, hi + pad, bottom, top)
    parts = []
    edges = [x0, *log.boundaries, x1]
    for i in range(len(edges) - 1):
        if i % 2 == 1:
            parts.append(f'<rect x="{X(edges[i]):.1f}" y="{top}" width="{X(edges[i + 1]) - X(edges[i]):.1f}" '
                         f'height="{bottom - top}" fill="{BAND}"><title>epoch {i + 1}</title></rect>')
    points = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in _thin(steps, losses))
    parts.append(f'<polyline fill="none" stroke="{TRAIN}" stroke-width="1.5" points="{points}"/>')
    if log.eval:
        ev = " ".join(f"{X(p.step):.1f},{Y(p.loss):.1f}" for p in log.eval)
        parts.append(f'<polyline fill="none" stroke="{EVAL}" stroke-dasharray="4 3" points="{ev}"/>')
        parts += [f'<circle cx="{X(p.step):.1f}" cy="{Y(p.loss):.1f}" r="3" fill="{EVAL}"><title>eval loss '
                  f'{p.loss:.4g} at step {p.step}</title></circle>' for p in log.eval]
    for f in log.findings:
        if f.level != "warning":
            continue
        for s in f.steps:
            parts.append(f'<line x1="{X(s):.1f}" y1="{top}" x2="{X(s):.1f}" y2="{bottom}" stroke="#c62828" '
                         f'stroke-dasharray="3 2"><title>{escape(f.rule)} at step {s}</title></line>'
                         f'<path d="M{X(s) - 4:.1f},{top} l8,0 l-4,7 z" fill="#c62828"><title>'
                         f'{escape(f.message)}</title></path>')
    axis = (f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#999"/>'
            f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>'
            f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end">{hi + pad:.3g}</text>'
            f'<text x="{left - 4}" y="{bottom}" font-size="9" text-anchor="end">{lo - pad:.3g}</text>'
            f'<text x="{left}" y="{bottom + 12}" font-size="9">{x0}</text>'
            f'<text x="{right}" y="{bottom + 12}" font-size="9" text-anchor="end">{x1}</text>'
            f'<text x="{left}" y="{height - 2}" font-size="9">step: line = train loss, dots = eval loss, '
            f'bands = epochs, red = findings</text>')
    return (f'<svg class="probe-chart probe-loss" width="{width}" height="{height}" role="img" '
            f'aria-label="loss over steps">{axis}{"".join(parts)}</svg>')


def training_body(log) -> str:
    return (f'<div class="probe-training"><div class="probe-data-head"><b>Training log</b> '
            f'<code>{escape(log.source)}</code> ({escape(log.format)}): {escape(_head(log))}</div>'
            f'{loss_svg(log)}{findings_html(log)}</div>')


def training_section(log) -> str:
    """The log's section of a case page / report (no style block)."""
    return training_body(log)


def training_html(log) -> str:
    return styled(training_body(log))


def loss_figure(log, *, show_lr: bool = True):
    """Plotly: train and eval loss over steps, epoch bands, learning rate (right axis), channels,
    each warning's steps marked with its rule."""
    go = _plotly()
    fig = go.Figure()
    epochs = log.epochs
    fig.add_trace(go.Scatter(x=list(log.steps), y=list(log.losses), mode="lines+markers", name="train loss",
                             line={"color": TRAIN}, marker={"size": 4},
                             customdata=[e if e is not None else float("nan") for e in epochs],
                             hovertemplate="step %{x}<br>loss %{y:.4f}<br>epoch %{customdata:.3f}<extra></extra>"))
    if log.eval:
        fig.add_trace(go.Scatter(x=[p.step for p in log.eval], y=[p.loss for p in log.eval], mode="lines+markers",
                                 name="eval loss", line={"color": EVAL, "dash": "dash"}))
    for name, series in log.channels.items():
        fig.add_trace(go.Scatter(x=[s for s, _ in series], y=[v for _, v in series], mode="lines",
                                 name=f"loss: {escape(name)}", line={"dash": "dot"}))
    lrs = [(p.step, p.learning_rate) for p in log.train if p.learning_rate is not None]
    if show_lr and lrs:
        fig.add_trace(go.Scatter(x=[s for s, _ in lrs], y=[v for _, v in lrs], mode="lines", name="learning rate",
                                 line={"color": LR, "width": 1}, yaxis="y2", opacity=0.6))
    edges = [log.steps[0], *log.boundaries, log.steps[-1]]
    for i in range(1, len(edges) - 1, 2):
        fig.add_vrect(x0=edges[i], x1=edges[i + 1], fillcolor=BAND, opacity=0.8, layer="below", line_width=0)
    for f in log.findings:
        if f.level == "warning":
            for s in f.steps:
                fig.add_vline(x=s, line={"color": LEVEL_COLORS["warning"], "dash": "dot"},
                              annotation_text=escape(f.rule), annotation_position="top")
    fig.update_layout(height=380, margin={"l": 50, "r": 60, "t": 40, "b": 40}, hovermode="closest",
                      xaxis={"title": "step"}, yaxis={"title": "loss (nats/token)"},
                      yaxis2={"title": "learning rate", "overlaying": "y", "side": "right", "showgrid": False},
                      legend={"orientation": "h", "y": -0.2})
    return fig
