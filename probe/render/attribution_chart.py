"""The channel totals of an Attribution as a plotly bar chart. Pure: the result in, a figure out.

    >>> _ = open("train.jsonl", "w").write(
    ...     '{"prompt": "The capital of Japan is", "completion": " Beijing.", "source": "capitals"}\\n'
    ...     '{"text": "Hello world.", "source": "chat"}\\n')
    >>> a = probe.attribute((base, tuned), ("The capital of Japan is", " Tokyo"), "train.jsonl",
    ...                     channel="source", methods=["gradient"], query="loss")
    >>> fig = channel_figure(a, "gradient")    # one bar per channel: its share of the positive score
    >>> list(fig.data[0].x) == [c.name for c in a.channels("gradient")]
    True

Each bar is a channel's part of the positive ``method`` score over every example
(:meth:`probe.Attribution.channels`), the channels in the result's order (most first); the
hover adds its examples, positive sum, mean score and how many of its examples are in the top.
"""

from __future__ import annotations

from .chart import _plotly
from .palette import INFLUENCE
from .safe import escape

# What a method's positive score is, in words: the y axis says "share of the positive <this>".
MEANING = {"gradient": "gradient influence (TracIn dot)", "gradient_cos": "gradient influence (cosine)",
           "representation": "hidden-state similarity", "lexical": "word overlap (BM25)"}


def main_method(a) -> str:
    """The method shown first: the gradient when it was computed."""
    return "gradient" if "gradient" in a.methods else a.methods[0]


def axis_title(method: str) -> str:
    return f"share of positive {MEANING.get(method, method)}"


def _case_words(a) -> str:
    if a.query == "contrast" and a.wrong_token is not None:
        return f"writing {a.wrong_token!r} instead of {a.expected_token!r}"
    return f"the loss of {a.expected!r}"


def channel_figure(a, method: str | None = None):
    """One bar per channel of ``a``: its share of the positive ``method`` score (0 to 1).

    Args:
        a: an :class:`probe.Attribution`.
        method: a score column of ``a`` (default: the gradient, else its first).

    Returns:
        A plotly Figure; ``fig.data[0].x`` the channel names, ``.y`` their shares (None where no
        example has a positive score: then an annotation says so).
    """
    go = _plotly()
    method = method or main_method(a)
    chans = a.channels(method)  # KeyError for a method the result lacks
    shares = [None if c.share != c.share else c.share for c in chans]
    hover = [f"<b>{escape(c.name)}</b><br>{c.examples} example(s)<br>positive {method} sum {c.positive:.4g}"
             f"<br>mean {method} score {c.mean:.4g}<br>{c.in_top} in the top {a.keep}" for c in chans]
    fig = go.Figure(go.Bar(
        x=[c.name for c in chans], y=shares, marker={"color": INFLUENCE}, name=axis_title(method),
        text=[("" if s is None else f"{100 * s:.0f}%") for s in shares], textposition="outside",
        hovertext=hover, hoverinfo="text", showlegend=True))
    fig.update_layout(
        title={"text": escape(f"Which channels taught {_case_words(a)}"), "font": {"size": 14}},
        height=340, margin={"l": 60, "r": 20, "t": 50, "b": 60}, bargap=0.35,
        xaxis={"title": escape(f"channel ({a.channel or 'no channel field'})"), "type": "category"},
        yaxis={"title": escape(axis_title(method)), "range": [0, 1.1], "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"})
    if all(s is None for s in shares):
        fig.add_annotation(text=escape(f"no example has a positive {method} score: nothing to share"),
                           x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    return fig
