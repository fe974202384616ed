"""The basics pack's table (per tag: lost / gained / kept / never, the log P(expected) drop) as
text and escaped HTML."""

from __future__ import annotations

import math

from .phrases import clip
from .regression import OUTCOME_COLORS, regression_body
from .safe import escape
from .style import styled

_OUT = ("lost", "gained", "kept", "never")


def _num(v, fmt="{:>7}") -> str:
    return fmt.format("-" if v is None else v)


def _delta(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:+.2f}"


def _timing(b) -> str:
    parts = [f"{k} {v:.1f} s" for k, v in b.seconds.items()]
    return f" ({', '.join(parts)})" if parts else ""


def basics_text(b) -> str:
    lines = [f"Basics pack {b.pack or ''}: {len(b.scores)} cases - {b.models.get('base', 'base')} -> "
             f"{b.models.get('tuned', 'tuned')}" + (f" (adapter {b.adapter})" if b.adapter else "") + _timing(b)]
    lines.append(f"  {'tag':<14}{'n':>5}" + "".join(f"{o:>8}" for o in _OUT)
                 + f"{'dlogP':>8}{'dropped':>9}")
    for row in b.table():
        lines.append(f"  {clip(row['tag'], 14):<14}{row['n']:>5}" + "".join(_num(row[o], "{:>8}") for o in _OUT)
                     + f"{_delta(row['mean_delta']):>8}{row['dropped']:>9}")
    lines.append(f"  dlogP: mean tuned - base log P(expected answer), nats; dropped: fell by >= "
                 f"{b.settings.get('min_drop', 1.0):g} nats" + ("" if b.regression is not None else
                                                               "; no greedy pass (lost/gained: '-')"))
    worst = [row for row in b.table() if row["tag"] != "all" and (row["lost"] or 0) > 0]
    worst.sort(key=lambda r: (-(r["lost"] or 0) / max(r["n"], 1), r["tag"]))
    for row in worst[:5]:
        ids = b.lost(row["tag"])
        lines.append(f"  lost in {row['tag']}: {row['lost']}/{row['n']}: {', '.join(ids[:6])}"
                     + (" ..." if len(ids) > 6 else ""))
    if b.promoted:
        tops = ", ".join(f"{p['text']!r} x{p['count']}" for p in b.promoted[:5])
        lines.append(f"  tokens tuned raised most often where an expected answer goes: {tops}")
    return "\n".join(lines)


def basics_body(b) -> str:
    head = "".join(f'<th style="color:{OUTCOME_COLORS[o]}">{o}</th>' for o in _OUT)
    rows = []
    for row in b.table():
        cells = "".join(f"<td>{'-' if row[o] is None else row[o]}</td>" for o in _OUT)
        tag = f"<b>{escape(row['tag'])}</b>" if row["tag"] == "all" else escape(row["tag"])
        rows.append(f"<tr><td>{tag}</td><td>{row['n']}</td>{cells}<td>{_delta(row['mean_delta'])}</td>"
                    f"<td>{row['dropped']}</td></tr>")
    table = (f'<table class="probe-reg"><tr><th>tag</th><th>n</th>{head}<th>&Delta; log P(expected)</th>'
             f'<th>dropped</th></tr>{"".join(rows)}</table>')
    promoted = ""
    if b.promoted:
        items = ", ".join(f"<code>{escape(repr(p['text']))}</code> &times;{int(p['count'])}" for p in b.promoted[:8])
        promoted = f"<div>tokens tuned raised most often where an expected answer goes: {items}</div>"
    detail = ""
    if b.regression is not None:
        detail = f"<details><summary>greedy answers by tag and case</summary>{regression_body(b.regression)}</details>"
    title = (f"<div style=\"font-family:sans-serif\"><b>Basics pack</b> {escape(b.pack)} &middot; {len(b.scores)} cases "
             f"&middot; {escape(b.models.get('base', 'base'))} &rarr; {escape(b.models.get('tuned', 'tuned'))}"
             f"{' (adapter ' + escape(b.adapter) + ')' if b.adapter else ''}{escape(_timing(b))}</div>")
    note = (f"<div style=\"font-size:85%;color:#555\">&Delta; log P: mean tuned &minus; base log-probability of the "
            f"expected answer (nats); dropped: fell by &ge; {b.settings.get('min_drop', 1.0):g} nats.</div>")
    return f'<div class="probe-basics">{title}{table}{note}{promoted}{detail}</div>'


def basics_html(b) -> str:
    return styled(basics_body(b))
