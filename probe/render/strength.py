"""The adapter-strength curve: P(expected) and P(wrong) over lambda, the flip marked, as text
and as escaped HTML with an inline SVG chart (no script, opens offline)."""

from __future__ import annotations

import math

from .phrases import clip, show
from .safe import escape
from .style import styled

EXPECTED_COLOR, WRONG_COLOR, FLIP_COLOR = "#2e7d32", "#c62828", "#6a1b9a"
W, H, LEFT, TOP, BOTTOM = 360, 150, 44, 10, 28  # chart size and margins, px


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2g}" if x >= 1e-3 or x == 0 else f"{x:.1e}"


def _prompt(prompt) -> str:
    return prompt if isinstance(prompt, str) else " / ".join(
        f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def _title(s) -> str:
    return (f"Strength {s.case_id or ''}: adapter {s.adapter or '?'} over lambda "
            f"(0 base, 1 tuned); expected {show(clip(s.expected, 40))}"
            + (f", wrong {show(clip(s.wrong, 40))}" if s.wrong is not None else ""))


def flip_phrase(s) -> str:
    """``answer flips between lambda 0.5 (right) and 0.75 (wrong)``, or that it does not."""
    flip = s.flip
    if flip is None:
        state = "right" if s.points and s.points[0].passed else "wrong"
        return f"the answer does not flip: {state} at every lambda ({', '.join(f'{p.scale:g}' for p in s.points)})"
    a, b = (s.point(x) for x in flip)
    words = lambda p: "right" if p.passed else "wrong"  # noqa: E731
    return f"answer flips between lambda {a.scale:g} ({words(a)}) and {b.scale:g} ({words(b)})"


def _crossing_phrase(s) -> str:
    x = s.crossing
    return "" if x is None else f"; P(expected) = P(wrong) at lambda ~{x:.2f} (interpolated)"


def strength_text(s) -> str:
    lines = [_title(s), f"  check: {s.check}", f"  {flip_phrase(s)}{_crossing_phrase(s)}",
             f"  {'lambda':>6}  {'P(expected)':>11}  {'P(wrong)':>9}  {'check':<5}  {'verdict':<13}  answer"]
    for p in s.points:
        lines.append(f"  {p.scale:>6g}  {_p(p.p_expected):>11}  {_p(p.p_wrong):>9}  "
                     f"{'PASS' if p.passed else 'fail':<5}  {p.verdict:<13}  {show(clip(p.answer, 60))}")
    return "\n".join(lines)


def _y(logp: float, floor: float) -> float:
    """log10 P on the chart: 0 at the top, ``floor`` (a negative log10) at the bottom."""
    v = max(logp / math.log(10), floor) if math.isfinite(logp) else floor
    return TOP + (H - TOP - BOTTOM) * v / floor


def strength_svg(s) -> str:
    """log10 P(expected) (green) and P(wrong) (red) over lambda; a filled dot where the greedy
    answer passes the check, a hollow one where it fails; the flip a dashed purple band."""
    if not s.points:
        return ""
    xs = [p.scale for p in s.points]
    lo, hi = min(xs + [0.0]), max(xs + [1.0])
    span = (hi - lo) or 1.0
    x = lambda v: LEFT + (W - LEFT - 10) * (v - lo) / span  # noqa: E731
    logs = [p.logp_expected for p in s.points] + [p.logp_wrong for p in s.points if p.logp_wrong is not None]
    finite = [v / math.log(10) for v in logs if math.isfinite(v)]
    floor = min(-1.0, math.floor(min(finite, default=-1.0)))
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#999"/>',
             f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - 10}" y2="{H - BOTTOM}" stroke="#999"/>']
    for tick in sorted({0, int(floor) // 2, int(floor)}):
        y = _y(tick * math.log(10), floor)
        parts.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end">1e{tick}</text>')
    for v in xs:
        parts.append(f'<text x="{x(v):.1f}" y="{H - BOTTOM + 12}" font-size="9" text-anchor="middle">{v:g}</text>')
    parts.append(f'<text x="{(LEFT + W) / 2:.0f}" y="{H - 4}" font-size="9" text-anchor="middle">'
                 'lambda (0 base, 1 tuned)</text>')
    if s.flip is not None:
        a, b = s.flip
        parts.append(f'<rect x="{x(a):.1f}" y="{TOP}" width="{x(b) - x(a):.1f}" height="{H - TOP - BOTTOM}" '
                     f'fill="{FLIP_COLOR}" fill-opacity="0.08" stroke="{FLIP_COLOR}" stroke-dasharray="3,3">'
                     f'<title>{escape(flip_phrase(s))}</title></rect>')
    series = [("expected", EXPECTED_COLOR, [(p, p.logp_expected) for p in s.points])]
    if s.wrong is not None:
        series.append(("wrong", WRONG_COLOR, [(p, p.logp_wrong) for p in s.points]))
    for label, colour, values in series:
        pts = " ".join(f"{x(p.scale):.1f},{_y(v, floor):.1f}" for p, v in values)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for p, v in values:
            fill = colour if p.passed else "white"
            tip = (f"lambda {p.scale:g}: P({label}) = {_p(math.exp(v))}; greedy answer "
                   f"{show(clip(p.answer, 60))} ({'passes' if p.passed else 'fails'} the check); {p.verdict}")
            parts.append(f'<circle cx="{x(p.scale):.1f}" cy="{_y(v, floor):.1f}" r="3" fill="{fill}" '
                         f'stroke="{colour}"><title>{escape(tip)}</title></circle>')
    return (f'<svg class="probe-chart" width="{W}" height="{H}" role="img" '
            f'aria-label="P(expected) and P(wrong) over the adapter strength lambda">{"".join(parts)}</svg>')


def _legend(s) -> str:
    def key(colour, text, dash=""):
        return (f'<span style="white-space:nowrap;margin-right:1em"><svg width="18" height="8">'
                f'<line x1="0" y1="4" x2="18" y2="4" stroke="{colour}" stroke-width="2"{dash}/></svg> '
                f'{text}</span>')

    items = [key(EXPECTED_COLOR, f"P(expected <code>{escape(clip(s.expected, 30))}</code>)")]
    if s.wrong is not None:
        items.append(key(WRONG_COLOR, f"P(wrong <code>{escape(clip(s.wrong, 30))}</code>)"))
    items.append("&#9679; greedy answer passes the check, &#9675; fails")
    if s.flip is not None:
        items.append(key(FLIP_COLOR, "the flip", ' stroke-dasharray="3,3"'))
    return f'<div style="font-size:85%">{" ".join(items)}</div>'


def strength_body(s) -> str:
    rows = "".join(
        f"<tr><td>{p.scale:g}</td><td>{_p(p.p_expected)}</td><td>{_p(p.p_wrong)}</td>"
        f"<td>{'PASS' if p.passed else 'fail'}</td><td>{escape(p.verdict)}</td>"
        f"<td><code>{escape(clip(p.answer, 80))}</code></td></tr>" for p in s.points)
    table = (f'<details><summary>per lambda</summary><table class="probe-reg"><tr><th>lambda</th>'
             f'<th>P(expected)</th><th>P(wrong)</th><th>check</th><th>verdict</th><th>greedy answer</th></tr>'
             f'{rows}</table></details>')
    head = (f'<div style="font-family:sans-serif"><b>Adapter strength</b> {escape(s.case_id or "")} '
            f'&middot; adapter {escape(s.adapter or "?")} &middot; check: <code>{escape(s.check)}</code><br>'
            f'{escape(flip_phrase(s) + _crossing_phrase(s))}</div>')
    return f'<div class="probe-strength">{head}{strength_svg(s)}{_legend(s)}{table}</div>'


def strength_html(s) -> str:
    return styled(strength_body(s))


def strengths_text(many) -> str:
    lines = [f"Adapter strength of {len(many.items)} case(s)"]
    for s in many.items:
        lines.append(f"  {clip(s.case_id or '?', 24):<24}  {flip_phrase(s)}{_crossing_phrase(s)}")
    lines += [f"  error: {e}" for e in many.errors]
    return "\n".join(lines)


def strengths_body(many) -> str:
    errors = "".join(f"<li>{escape(e)}</li>" for e in many.errors)
    errors = f'<ul style="color:#b00020">{errors}</ul>' if errors else ""
    return (f'<div class="probe-strengths"><div style="font-family:sans-serif"><b>Adapter strength</b> '
            f'of {len(many.items)} case(s)</div>{"".join(strength_body(s) for s in many.items)}{errors}</div>')


def strengths_html(many) -> str:
    return styled(strengths_body(many))
