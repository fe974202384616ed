"""Shift results as text, escaped HTML and inline SVG: the shift map, KL by position, promoted tokens.

Pure functions, no script: every piece of model or user text goes through ``probe.render.safe.escape``.
"""

from __future__ import annotations

import math
import re
from .safe import escape

from .strip import visible
from .style import styled
from .phrases import clip as _clip, show
from ..core.registry import type_of
from .chart import _plotly
from .evals import eval_flips_body
from .regression import regression_body

CLASS_COLORS = {"unshifted": "#f1f3f4", "marginal": "#ffe08a", "shifted": "#f4a0a0"}


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return " / ".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def position_tip(p) -> str:
    """The hover card of one position: class, both models' numbers and top-k, gains (escaped)."""
    lines = [f"#{p.index} {p.text!r}: {p.kind} (base rank {p.base_rank})",
             f"tuned p={math.exp(p.tuned_logprob):.4f}  base p={math.exp(p.base_logprob):.4f}  KL={p.kl:.3f}",
             "tuned top:  " + ", ".join(f"{a.text!r} {a.prob:.3f}" for a in p.tuned_top),
             "base top:   " + ", ".join(f"{a.text!r} {a.prob:.3f}" for a in p.base_top)]
    if p.promoted:
        lines.append("promoted:   " + ", ".join(f"{g.text!r} {g.gain:+.2f}" for g in p.promoted))
    if p.demoted:
        lines.append("demoted:    " + ", ".join(f"{g.text!r} {g.gain:+.2f}" for g in p.demoted))
    return escape("\n".join(lines))


def shift_strip(ps, *, mark: int | None = None, prompt_index: int | None = None) -> str:
    """One answer's tokens colored by class, a hover card each (both models' top-k)."""
    spans = []
    for p in ps.positions:
        outline = " probe-div" if p.index == mark else ""
        attrs = f'data-index="{p.index}" data-kind="{p.kind}"'
        if prompt_index is not None:
            attrs += f' data-prompt="{prompt_index}"'
        spans.append(f'<span class="probe-tok{outline}" {attrs} style="background:{CLASS_COLORS[p.kind]}">'
                     f'{visible(p.text)}<span class="probe-tip">{position_tip(p)}</span></span>')
    return f'<div class="probe-strip">{"".join(spans)}</div>'


def key_html() -> str:
    return ('<div class="probe-key" style="font-size:85%">' + "".join(
        f'<span style="background:{c}">{k}</span>' for k, c in CLASS_COLORS.items()) + "</div>")


def shift_map_html(s, limit: int | None = None) -> str:
    """Every prompt's answer as a shift strip (the first ``limit`` prompts)."""
    parts = []
    for i, ps in enumerate(s.prompts[:limit]):
        label = ps.case_id or f"prompt {i}"
        parts.append(f'<div class="probe-prompt">{escape(label)}: <code>{escape(_clip(_prompt_text(ps.prompt), 120))}'
                     f'</code> &middot; {ps.shifted}/{len(ps.positions)} shifted, KL {ps.kl:.2f}</div>'
                     + shift_strip(ps, prompt_index=i))
    more = len(s.prompts) - len(s.prompts[:limit])
    if more > 0:
        parts.append(f'<div class="probe-prompt">{len(s.prompts) - more} of {len(s.prompts)} prompts shown</div>')
    return "".join(parts)


def kl_svg(s, *, width: int = 520, height: int = 120) -> str:
    """Mean KL(tuned || base) by answer position, with the shifted share as bars (inline SVG)."""
    curve = s.kl_by_position()
    classes = s.classes_by_position()
    if not curve:
        return ""
    top = max(m for m, _ in curve) or 1.0
    n = len(curve)
    step = (width - 50) / max(n, 1)
    bars, points = [], []
    for j, ((mean, count), cls) in enumerate(zip(curve, classes)):
        x = 40 + j * step
        share = cls["shifted"] / count if count else 0.0
        h = share * (height - 20)
        bars.append(f'<rect x="{x:.1f}" y="{height - 10 - h:.1f}" width="{max(step - 1, 1):.1f}" height="{h:.1f}" '
                    f'fill="{CLASS_COLORS["shifted"]}"><title>position {j}: {share:.0%} shifted of {count}'
                    f'</title></rect>')
        y = height - 10 - mean / top * (height - 20)
        points.append(f"{x + step / 2:.1f},{y:.1f}")
    axis = (f'<line x1="38" y1="10" x2="38" y2="{height - 10}" stroke="#999"/>'
            f'<line x1="38" y1="{height - 10}" x2="{width}" y2="{height - 10}" stroke="#999"/>'
            f'<text x="34" y="16" font-size="9" text-anchor="end">{top:.2g}</text>'
            f'<text x="34" y="{height - 10}" font-size="9" text-anchor="end">0</text>'
            f'<text x="40" y="{height}" font-size="9">answer position 0..{n - 1}: line = mean KL (nats), '
            f'bars = shifted share</text>')
    line = f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{" ".join(points)}"/>'
    return (f'<svg class="probe-chart probe-kl" width="{width}" height="{height + 4}" role="img" '
            f'aria-label="KL by position">{axis}{"".join(bars)}{line}</svg>')


def token_table_html(s, which: str = "promoted", n: int = 15, examples: int = 3) -> str:
    """The promoted (or demoted) tokens: count, prompts, mean gain, both models' mean p, examples."""
    tokens = (s.promoted if which == "promoted" else s.demoted)[:n]
    if not tokens:
        return f"<p>No {which} tokens (no position passed min_gain / min_prob).</p>"
    rows = []
    for rank, t in enumerate(tokens, 1):
        seen, ex = set(), []
        for i, j in t.at:
            if i not in seen and len(ex) < examples:
                seen.add(i)
                ps = s.prompts[i]
                ex.append(escape(_clip(f"{ps.case_id or i}: {_prompt_text(ps.prompt)}", 60)) + f" @{j}")
        rows.append(f'<tr data-token="{t.id}"><td>{rank}</td><td class="l"><code>{escape(show(t.text))}</code></td>'
                    f"<td>{t.count}</td><td>{t.n_prompts}</td><td>{t.mean_gain:+.2f}</td>"
                    f"<td>{t.mean_tuned_prob:.3f}</td><td>{t.mean_base_prob:.3f}</td>"
                    f'<td class="l">{"<br>".join(ex)}</td></tr>')
    head = "".join(f'<th{" class=l" if h in ("token", "where") else ""}>{h}</th>' for h in
                   ("#", "token", "positions", "prompts", "mean gain", "p tuned", "p base", "where"))
    total = len(s.promoted if which == "promoted" else s.demoted)
    cut = f'<div class="probe-prompt">{len(tokens)} of {total} {which} tokens</div>' if total > len(tokens) else ""
    return (f'<div class="probe-scroll"><table class="probe-tokens" data-which="{which}"><tr>{head}</tr>'
            f'{"".join(rows)}</table></div>{cut}')


def _summary(s) -> str:
    c = s.class_counts
    n = s.n_positions
    pct = lambda k: f"{c[k] / n:.1%}" if n else "-"  # noqa: E731
    return (f"{len(s.prompts)} prompts, {n} answer positions: {pct('unshifted')} unshifted, "
            f"{pct('marginal')} marginal (base rank 2..{s.marginal}), {pct('shifted')} shifted; "
            f"mean KL(tuned || base) {s.mean_kl:.3f} nats")


def shift_text(s) -> str:
    lines = [f"Shift {s.models.get('base', 'base')} -> {s.models.get('tuned', 'tuned')}"
             + (f" (adapter {s.adapter})" if s.adapter else ""), "  " + _summary(s)]
    curve = s.kl_by_position()
    if curve:
        lines.append("  KL by position: " + " ".join(f"{m:.2f}" for m, _ in curve[:12])
                     + (" ..." if len(curve) > 12 else ""))
    for which in ("promoted", "demoted"):
        tokens = (s.promoted if which == "promoted" else s.demoted)[:8]
        if tokens:
            lines.append(f"  {which}: " + ", ".join(
                f"{show(t.text)} x{t.count} ({t.mean_gain:+.2f})" for t in tokens))
    return "\n".join(lines)


def shift_html(s, *, limit: int | None = 20) -> str:
    return styled(shift_body(s, limit=limit))


def shift_body(s, *, limit: int | None = 20) -> str:
    head = (f"<div><b>Shift</b> {escape(s.models.get('base', 'base'))} &rarr; "
            f"{escape(s.models.get('tuned', 'tuned'))}"
            f"{' (adapter ' + escape(s.adapter) + ')' if s.adapter else ''}: {escape(_summary(s))}</div>")
    return (f'<div class="probe-shift">{head}<h4>KL by position</h4>{kl_svg(s)}'
            f'<h4>Promoted tokens (tuned far above base)</h4>{token_table_html(s, "promoted")}'
            f'<h4>Demoted tokens</h4>{token_table_html(s, "demoted", n=8)}'
            f'<h4>Shift map</h4>{key_html()}{shift_map_html(s, limit)}</div>')


def kl_figure(s):
    """Plotly: mean KL by position (line) and the class shares by position (stacked bars)."""
    go = _plotly()
    curve, classes = s.kl_by_position(), s.classes_by_position()
    x = list(range(len(curve)))
    fig = go.Figure()
    for kind, colour in CLASS_COLORS.items():
        fig.add_trace(go.Bar(x=x, y=[c[kind] / max(sum(c.values()), 1) for c in classes], name=kind,
                             marker={"color": colour}, yaxis="y2", opacity=0.6))
    fig.add_trace(go.Scatter(x=x, y=[m for m, _ in curve], mode="lines+markers", name="mean KL",
                             customdata=x, line={"color": "#1565c0"}))
    fig.update_layout(barmode="stack", height=320, margin={"l": 50, "r": 50, "t": 30, "b": 40},
                      xaxis={"title": "answer position"}, yaxis={"title": "KL(tuned || base), nats"},
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 1], "title": "share"},
                      legend={"orientation": "h", "y": -0.25})
    return fig


SECTION_TITLES = {  # a corpus result's section title in the report (registered name -> words)
    "Regression": "Regression by tag: which cases fine-tuning lost or gained",
    "Shift": "What fine-tuning changed: tokens the tuned model promotes and demotes",
    "EvalFlips": "Benchmark samples fine-tuning flipped",
    "TrainingLog": "Training log: the loss curve and what it shows",
    "DataLoss": "Data loss: how well each model fits the training data",
    "Collateral": "What else broke: the basics pack's expected answers under base and each adapter",
}


def section_title(kind: str, cls=None) -> str:
    """A reader's title for a corpus section: :data:`SECTION_TITLES`, a ``title`` the result
    class declares, or its name split into words ("DataLoss" -> "Data loss")."""
    if kind in SECTION_TITLES:
        return SECTION_TITLES[kind]
    if cls is not None and isinstance(getattr(cls, "title", None), str):
        return cls.title
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", kind).split()
    return " ".join([words[0]] + [w.lower() for w in words[1:]]) if words else kind


def report_section_parts(results, case_ids=frozenset()) -> list[tuple[str, str, str]]:
    """Corpus-level results for the casebook page as (anchor id, title, HTML section); a
    regression cell links to the case's section when the book holds that case, else to the
    table's own case list."""
    parts, seen = [], set()
    for r in results:
        try:
            kind = type_of(r).name  # the registered (saved) name: "Regression", "Shift"
        except TypeError:
            kind = None
        if kind == "Regression":
            own = not all(c.id in case_ids for c in r.cases)
            body, anchor = (regression_body(r) if own else regression_body(r, href=lambda cid: f"#case-{cid}"),
                            "probe-regression")
        elif kind == "Shift":
            body, anchor = shift_body(r), "probe-shift"
        elif kind == "EvalFlips":
            body, anchor = eval_flips_body(r), "probe-eval-flips"
        elif kind is not None and type_of(r).section is not None:  # any other registered corpus result
            body, anchor = type_of(r).section(r), f"probe-{type_of(r).default_name}"
        else:
            raise TypeError(f"a report section is a Shift or a Regression (or another registered result with a "
                            f"section), got {type(r).__name__}")
        base, n = anchor, 2
        while anchor in seen:  # two results of one kind: two anchors
            anchor, n = f"{base}-{n}", n + 1
        seen.add(anchor)
        title = section_title(kind, type(r))
        parts.append((anchor, title, f'<section class="probe-corpus" id="{escape(anchor, quote=True)}">'
                                     f'<h2>{escape(title)}</h2>{body}</section>'))
    return parts


def report_sections(results, case_ids=frozenset()) -> str:
    """The corpus sections of :func:`report_section_parts`, joined."""
    return "".join(html for _, _, html in report_section_parts(results, case_ids))


def position_html(p) -> str:
    """One position in full: class, both models' numbers and top-k side by side, gains there."""
    n = max(len(p.tuned_top), len(p.base_top))
    rows = []
    for k in range(n):
        t = p.tuned_top[k] if k < len(p.tuned_top) else None
        b = p.base_top[k] if k < len(p.base_top) else None
        cell = lambda a: f'<td class="l"><code>{escape(show(a.text))}</code></td><td>{a.prob:.3f}</td>' if a else "<td></td><td></td>"  # noqa: E731
        rows.append(f"<tr><td>{k + 1}</td>{cell(t)}{cell(b)}</tr>")
    gains = "".join(f'<li>{which} <code>{escape(show(g.text))}</code> {g.gain:+.2f} nats '
                    f'(p {math.exp(g.base_logprob):.3f} &rarr; {math.exp(g.tuned_logprob):.3f})</li>'
                    for which, gs in (("promoted", p.promoted), ("demoted", p.demoted)) for g in gs)
    return (f'<div class="probe-shift probe-position"><div>position {p.index} '
            f'<code>{escape(show(p.text))}</code>: <b>{p.kind}</b> (base rank {p.base_rank}, tuned rank '
            f'{p.tuned_rank}), p tuned {math.exp(p.tuned_logprob):.3f}, p base {math.exp(p.base_logprob):.3f}, '
            f'KL {p.kl:.3f}</div><table><tr><th>#</th><th class="l">tuned top</th><th>p</th>'
            f'<th class="l">base top</th><th>p</th></tr>{"".join(rows)}</table><ul>{gains}</ul></div>')


def wins_html(s, token, which: str = "promoted", limit: int = 50) -> str:
    """The prompts where ``token`` is promoted (demoted), largest gain first."""
    t = s.token(token, which)
    if t is None:
        return f"<p>{escape(show(str(token)))} is never {which}.</p>"
    items = []
    for i, j, g in s.where(t.id, which)[:limit]:
        ps = s.prompts[i]
        before = "".join(p.text for p in ps.positions[:j])
        items.append(f'<li data-prompt="{i}" data-position="{j}">{g:+.2f} nats at position {j} of '
                     f'<b>{escape(ps.case_id or f"prompt {i}")}</b> <code>{escape(_clip(_prompt_text(ps.prompt), 80))}'
                     f'</code> after <code>{escape(_clip(before, 60))}</code></li>')
    return (f'<div class="probe-shift probe-wins"><div><code>{escape(show(t.text))}</code> {which} at '
            f'{t.count} positions of {t.n_prompts} prompts (mean gain {t.mean_gain:+.2f} nats)</div>'
            f'<ol>{"".join(items)}</ol></div>')
