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


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values from ``lo`` to ``hi`` (1, 2 or 5 times a power of ten apart)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def loss_svg(log, *, width: int = 640, height: int = 240) -> str:
    """Train loss (line), eval loss (dots), every epoch a band with its number, each warning
    marked and named, readable axes (the loss axis from 0 or above, round ticks), a legend.
    Inline SVG, no script; text in the page's own colour (light and dark themes)."""
    steps, losses = log.steps, log.losses
    ys = list(losses) + [p.loss for p in log.eval]
    x0, x1 = min(steps[0], *(p.step for p in log.eval)) if log.eval else steps[0], steps[-1]
    if log.eval:
        x1 = max(x1, log.eval[-1].step)
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = max(0.0, lo - pad), hi + pad  # a loss is never below 0
    left, right, top, bottom = 52, width - 12, 22, height - 44
    X, Y = _scale(x0, x1 if x1 > x0 else x0 + 1, left, right), _scale(lo, hi, bottom, top)
    parts = []
    edges = [x0, *log.boundaries, x1]
    for i in range(len(edges) - 1):
        a, b = X(edges[i]), X(edges[i + 1])
        parts.append(f'<rect x="{a:.1f}" y="{top}" width="{max(0.0, b - a):.1f}" height="{bottom - top}" '
                     f'fill="currentColor" fill-opacity="{0.10 if i % 2 else 0.04}"><title>epoch {i + 1}: steps '
                     f'{edges[i]}-{edges[i + 1]}</title></rect>')
        if len(edges) > 2 and b - a > 34:
            parts.append(f'<text x="{(a + b) / 2:.1f}" y="{top + 11}" font-size="10" text-anchor="middle" '
                         f'fill="currentColor">epoch {i + 1}</text>')
    for t in _ticks(lo, hi, 6):
        parts.append(f'<line x1="{left - 3}" y1="{Y(t):.1f}" x2="{right}" y2="{Y(t):.1f}" stroke="currentColor" '
                     f'stroke-opacity="0.15"/><text x="{left - 5}" y="{Y(t) + 3:.1f}" font-size="10" '
                     f'text-anchor="end" fill="currentColor">{t:.3g}</text>')
    for t in _ticks(x0, x1):
        parts.append(f'<text x="{X(t):.1f}" y="{bottom + 13}" font-size="10" text-anchor="middle" '
                     f'fill="currentColor">{t:g}</text>')
    points = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in _thin(steps, losses))
    parts.append(f'<polyline fill="none" stroke="{TRAIN}" stroke-width="1.8" points="{points}"/>')
    if log.eval:
        ev = " ".join(f"{X(p.step):.1f},{Y(p.loss):.1f}" for p in log.eval)
        parts.append(f'<polyline fill="none" stroke="{EVAL}" stroke-dasharray="4 3" points="{ev}"/>')
        parts += [f'<circle cx="{X(p.step):.1f}" cy="{Y(p.loss):.1f}" r="3" fill="{EVAL}"><title>eval loss '
                  f'{p.loss:.4g} at step {p.step}</title></circle>' for p in log.eval]
    for f in log.findings:
        if f.level != "warning":
            continue
        for k, s in enumerate(f.steps):
            parts.append(f'<line x1="{X(s):.1f}" y1="{top}" x2="{X(s):.1f}" y2="{bottom}" stroke="#c62828" '
                         f'stroke-width="1.5" stroke-dasharray="3 2"><title>{escape(f.rule)} at step {s}</title></line>'
                         f'<path d="M{X(s) - 4:.1f},{top} l8,0 l-4,7 z" fill="#c62828"><title>'
                         f'{escape(f.message)}</title></path>')
            if k == 0:
                anchor = "end" if X(s) > (left + right) / 2 else "start"
                shift = -5 if anchor == "end" else 5
                parts.append(f'<text x="{X(s) + shift:.1f}" y="{top + 24}" font-size="10" text-anchor="{anchor}" '
                             f'fill="currentColor" class="probe-finding">{escape(f.rule)}</text>')
    axis = (f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="currentColor" stroke-opacity="0.5"/>'
            f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="currentColor" stroke-opacity="0.5"/>'
            f'<text x="12" y="{(top + bottom) / 2:.0f}" font-size="11" fill="currentColor" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + bottom) / 2:.0f})">loss (nats)</text>'
            f'<text x="{(left + right) / 2:.0f}" y="{bottom + 27}" font-size="11" fill="currentColor" '
            f'text-anchor="middle">training step</text>')
    key_y = height - 4
    legend = (f'<line x1="{left}" y1="{key_y - 4}" x2="{left + 18}" y2="{key_y - 4}" stroke="{TRAIN}" stroke-width="2"/>'
              f'<text x="{left + 22}" y="{key_y}" font-size="11" fill="currentColor">train loss</text>'
              + (f'<circle cx="{left + 102}" cy="{key_y - 4}" r="3" fill="{EVAL}"/>'
                 f'<text x="{left + 109}" y="{key_y}" font-size="11" fill="currentColor">eval loss</text>'
                 if log.eval else "")
              + f'<rect x="{left + 180}" y="{key_y - 10}" width="14" height="10" fill="currentColor" '
                f'fill-opacity="0.10"/><text x="{left + 198}" y="{key_y}" font-size="11" fill="currentColor">'
                f'epochs</text><line x1="{left + 256}" y1="{key_y - 10}" x2="{left + 256}" y2="{key_y}" '
                f'stroke="#c62828" stroke-dasharray="3 2"/><text x="{left + 262}" y="{key_y}" font-size="11" '
                f'fill="currentColor">warnings (named; hover for why)</text>')
    return (f'<svg class="probe-chart probe-loss" width="{width}" height="{height}" role="img" '
            f'aria-label="loss over steps" style="max-width:100%">{"".join(parts)}{axis}{legend}</svg>')


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
