"""Views of a LayerLens: a plain-text table, an escaped HTML grid, a plotly figure. Pure.

    >>> lens = probe.layers(tuned, "What is the capital of Japan?", " Beijing")
    >>> print(lens_text(lens))
    LayerLens of ' Beijing' ...
    >>> fig = lens_figure(lens, kind="heatmap")
"""

from __future__ import annotations

import math
from .phrases import p_text
from .safe import escape

from .chart import _label, _plotly
from .strip import color, visible
from ..core.vocab import LensFigure
from .palette import legend
from .style import styled
from .text import show


def _top(cell) -> str:
    return f"{show(cell.top[0].text)} {cell.top[0].prob:.3f}" if cell.top else "-"


def lens_text(lens) -> str:
    head = f"LayerLens of {show(lens.target)} ({len(lens.tokens)} tokens, {lens.n_layers - 1} layers)"
    lines = [f"{head} - {lens.model}"]
    for j, text in enumerate(lens.tokens):
        lines.append(f"token {j} {show(text)}: first rank 1: {lens.first_top_name(j)}")
        lines.append(f"  {'layer':<19} {'rank':>7} {'prob':>8}  top token")
        for layer, cell in enumerate(lens.column(j)):
            lines.append(f"  {lens.layer_name(layer):<19} {cell.rank:>7} {p_text(cell.prob):>8}  {_top(cell)}")
    return "\n".join(lines)




def _tip(cell) -> str:
    lines = [f"target rank {cell.rank}   p={p_text(cell.prob)}"]
    lines += [f"{a.text!r}  {p_text(a.prob)}" for a in cell.top]
    return escape("\n".join(lines))


def lens_html(lens) -> str:
    """Rows: layers (embeddings first); columns: target tokens. A cell shows the layer's top
    token, colored by the target's probability; hover for the rank and the top-k."""
    head = "".join(f"<th>{visible(t)}</th>" for t in lens.tokens)
    rows = []
    for layer, row in enumerate(lens.cells):
        tds = "".join(
            f'<td title="{_tip(c)}" data-rank="{c.rank}" style="background:{color(c.prob)}">'
            f"{visible(c.top[0].text) if c.top else '-'} "
            f'<span class="probe-rank">#{c.rank} {p_text(c.prob)}</span></td>'
            for c in row
        )
        rows.append(f"<tr><th>{escape(lens.layer_name(layer))}</th>{tds}</tr>")
    caption = (f'<div class="probe-lens-head">logit lens of {visible(lens.target)} - '
               f"{escape(lens.model)}<br>{escape(lens.summary)}</div>")
    return styled(f"<div>{caption}<div class=\"probe-scroll\"><table class=\"probe-lens\"><tr><th>layer</th>{head}</tr>"
                  f"{''.join(rows)}</table></div>{legend('target')}</div>")


def _hover(lens, layer: int, j: int) -> str:
    c = lens.cells[layer][j]
    alts = "<br>".join(f"{escape(repr(a.text))} {a.prob:.3f}" for a in c.top)
    return (f"<b>{_label(lens.tokens[j])}</b> at {escape(lens.layer_name(layer))}<br>"
            f"rank {c.rank} p={c.prob:.4g}<br>{alts}")


def lens_figure(lens, kind: LensFigure = "lines"):
    """``"lines"``: rank (log axis, 1 at the top) and prob per layer, one line per target token.
    ``"heatmap"``: layer x token, colored by the target's log10 rank, top token in the hover."""
    go = _plotly()
    x = list(range(lens.n_layers))
    names = ["emb"] + [str(i) for i in x[1:]]
    if kind == "heatmap":
        z = [[math.log10(c.rank) for c in row] for row in lens.cells]
        text = [[_hover(lens, layer, j) for j in range(len(lens.tokens))] for layer in x]
        fig = go.Figure(go.Heatmap(
            z=z, x=[f"{j}:{_label(t)}" for j, t in enumerate(lens.tokens)], y=names, text=text,
            hovertemplate="%{text}<extra></extra>", colorscale="RdYlGn", reversescale=True,
            colorbar={"title": "log10 rank"}))
        fig.update_layout(height=max(260, 22 * len(x) + 120), xaxis={"title": "target token"},
                          yaxis={"title": "layer"})
        return fig
    if kind != "lines":
        raise ValueError(f"kind must be 'lines' or 'heatmap', got {kind!r}")
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("rank of the target", "P(target)"))
    for j, token in enumerate(lens.tokens):
        column = lens.column(j)
        hover = [_hover(lens, layer, j) for layer in x]
        for col, values in ((1, [c.rank for c in column]), (2, [c.prob for c in column])):
            fig.add_trace(go.Scatter(
                x=x, y=values, mode="lines+markers", name=f"{j}: {_label(token)}", legendgroup=str(j),
                showlegend=col == 1, text=hover, hovertemplate="%{text}<extra></extra>"), row=1, col=col)
    ticks = {"tickmode": "array", "tickvals": x, "ticktext": names, "title": "layer"}
    fig.update_xaxes(**ticks)
    fig.update_yaxes(type="log", autorange="reversed", title="rank", row=1, col=1)
    fig.update_yaxes(range=[0, 1], title="prob", row=1, col=2)
    fig.update_layout(height=360, hovermode="closest", legend={"orientation": "h", "y": -0.25},
                      margin={"l": 50, "r": 30, "t": 40, "b": 80})
    return fig
