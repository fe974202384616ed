"""Per-token charts as inline SVG: a few KB each, no script, readable offline and in print.

One bar per token, its height the token's probability; the bar's colour goes from red
(improbable) to green, forced tokens are grey, a marked token (the first divergence) is
outlined. Hovering a bar shows the token, its rank, probability and top alternatives (an SVG
``<title>``, escaped).
"""

from __future__ import annotations

from .safe import escape

from .strip import color

BAR, GAP, HEIGHT = 9, 2, 60


def _label(step) -> str:
    alts = ", ".join(f"{a.text!r} {a.prob:.3f}" for a in step.top[:5])
    forced = " (forced)" if step.forced else ""
    return f"#{step.index} {step.text!r}{forced}: p={step.prob:.4f} rank {step.rank}\ntop: {alts}"


def trace_svg(trace, *, mark: int | None = None, label: str = "") -> str:
    """A bar chart of P(token) for each step of ``trace`` (escaped SVG markup)."""
    n = len(trace.steps)
    width = max(60, n * (BAR + GAP) + 40)
    bars = []
    for s in trace.steps:
        x = 36 + s.index * (BAR + GAP)
        h = max(1.0, s.prob * HEIGHT)
        fill = "#bbb" if s.forced else color(s.prob)
        outline = ' stroke="#d00" stroke-width="2"' if s.index == mark else ""
        bars.append(f'<rect x="{x}" y="{HEIGHT - h + 4:.1f}" width="{BAR}" height="{h:.1f}" '
                    f'fill="{fill}"{outline}><title>{escape(_label(s))}</title></rect>')
    axis = (f'<line x1="34" y1="4" x2="34" y2="{HEIGHT + 4}" stroke="#999"/>'
            f'<line x1="34" y1="{HEIGHT + 4}" x2="{width}" y2="{HEIGHT + 4}" stroke="#999"/>'
            f'<text x="30" y="12" font-size="9" text-anchor="end">1</text>'
            f'<text x="30" y="{HEIGHT + 4}" font-size="9" text-anchor="end">0</text>')
    caption = f'<text x="36" y="{HEIGHT + 16}" font-size="10">{escape(label)}</text>' if label else ""
    return (f'<svg class="probe-chart" width="{width}" '
            f'height="{HEIGHT + 20}" role="img" aria-label="P(token) per token">{axis}{"".join(bars)}'
            f'{caption}</svg>')
