"""The basics pack's fast pass (expected answers teacher-forced under base and each adapter) as
text and escaped HTML: per adapter and tag, right base -> tuned, lost, the log P drop, the first token."""

from __future__ import annotations

import math

from .palette import delta_color
from .phrases import clip
from .regression import OUTCOME_COLORS
from .safe import escape
from .style import styled

WHAT = ("measured: P(expected answer) teacher-forced under base and tuned, no generation; "
        "right = the greedy answer would start with the expected answer (every expected token the "
        "model's top choice)")


def _delta(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:+.2f}"


def _first(pair) -> str:
    text, count = pair
    return f"{text!r} x{count}" if count else "-"


def _which(c) -> str:
    """Which of the pack's cases ran: all, or the sample (every case of some tags, k of the others)."""
    st = c.settings
    of = st.get("of") or len(c.cases)
    if st.get("per_tag") is None:
        return f"{len(c.cases)} cases" + (f" (tags {', '.join(st['tags'])})" if st.get("tags") else "")
    whole = st.get("whole") or []
    return (f"{len(c.cases)} of {of} cases: " + (f"every {', '.join(whole)} case, " if whole else "")
            + f"the first {st['per_tag']} of each other tag")


def _head(c) -> str:
    return (f"Basics pack {c.pack}, fast pass: {_which(c)} - {c.names.get('base', 'base')} -> "
            f"{c.names.get('tuned', 'tuned')} ({c.seconds:.1f} s)")


def _interesting(c, model) -> list[dict]:
    """The tags a reader looks at first: the largest mean fall in log P(expected) (the strict
    "right" proxy is rarely met by a model that answers in sentences, so lost says less)."""
    rows = [r for r in c.table(model) if r["tag"] != "all" and (r["lost"] or r["dropped"])]
    rows.sort(key=lambda r: (r["mean_delta"] if math.isfinite(r["mean_delta"]) else 0.0, -r["lost"], r["tag"]))
    return rows


def collateral_text(c, top: int = 8) -> str:
    lines = [_head(c), f"  {WHAT}"]
    for model in c.tuned:
        rows = c.table(model)
        lines.append(f"  {model}:  {'tag':<14}{'n':>4}  {'right b->t':>11}{'lost':>6}{'gained':>7}"
                     f"{'dlogP':>8}{'dropped':>8}  greedy first token: tuned (base)")
        shown = _interesting(c, model)[:top] + [r for r in rows if r["tag"] == "all"]
        for r in shown:
            lines.append(f"  {'':<{len(model) + 2}}{clip(r['tag'], 14):<14}{r['n']:>4}  "
                         f"{r['base_right']:>4} -> {r['tuned_right']:<4}{r['lost']:>5}{r['gained']:>7}"
                         f"{_delta(r['mean_delta']):>8}{r['dropped']:>8}  {_first(r['first'])} ({_first(r['base_first'])})")
        quiet = sum(1 for r in rows if r["tag"] != "all" and not (r["lost"] or r["dropped"]))
        more = len(rows) - len(shown) - quiet
        if more or quiet:
            lines.append(f"  {'':<{len(model) + 2}}(" + (f"{more} more tags with some lost or dropped, " if more else "")
                         + f"{quiet} with none; the report's table has every tag)")
    lines.append(f"  dlogP: mean tuned - base log P(expected), nats; dropped: fell by >= "
                 f"{c.settings.get('min_drop', 1.0):g} nats; lost: right under base, not under tuned. "
                 "The full check of every greedy answer: probe basics")
    return "\n".join(lines)


def _table(c, model) -> str:
    out = ("lost", "gained")
    head = "".join(f'<th><span class="probe-badge" style="background:{OUTCOME_COLORS[o]}">{o}</span></th>'
                   for o in out)
    rows = []
    for r in c.table(model):
        tag = f"<b>{escape(r['tag'])}</b>" if r["tag"] == "all" else escape(r["tag"])
        d = r["mean_delta"]
        shade = f' style="background:{delta_color(d)};color:#111"' if math.isfinite(d) else ""
        rows.append(f"<tr><td>{tag}</td><td>{r['n']}</td><td>{r['base_right']} &rarr; {r['tuned_right']}</td>"
                    + "".join(f"<td>{r[o]}</td>" for o in out)
                    + f"<td{shade}>{_delta(d)}</td><td>{r['dropped']}</td>"
                    f"<td style=\"white-space:nowrap\"><code>{escape(repr(r['first'][0]))}</code> &times;{r['first'][1]}</td>"
                    f"<td style=\"white-space:nowrap\"><code>{escape(repr(r['base_first'][0]))}</code> &times;{r['base_first'][1]}</td></tr>")
    return (f'<table class="probe-reg"><tr><th>tag</th><th>n</th><th>right base &rarr; tuned</th>{head}'
            f"<th>&Delta; log P(expected)</th><th>dropped</th><th>tuned's commonest first token</th>"
            f"<th>base's</th></tr>{''.join(rows)}</table>")


def collateral_body(c) -> str:
    title = f'<div style="font-family:sans-serif"><b>{escape(_head(c))}</b></div>'
    legend = (f'<div class="probe-legend">{escape(WHAT)}. lost: right under base, not under tuned; '
              f"&Delta; log P: mean tuned &minus; base log-probability of the expected answer (nats; red: "
              f"tuned finds it less likely); dropped: fell by &ge; {c.settings.get('min_drop', 1.0):g} nats; "
              "first token: the commonest greedy first token of the tag's answers. The full check of every "
              "greedy answer: <code>probe basics</code>.</div>")
    parts = []
    for model in c.tuned:
        worst = _interesting(c, model)[:1]
        note = ""
        if worst:
            r = worst[0]
            note = (f" &middot; most hit: <b>{escape(r['tag'])}</b> ({r['lost']} of {r['n']} lost, "
                    f"{r['dropped']} dropped, tuned starts {r['first'][1]} of {r['n']} with "
                    f"<code>{escape(repr(r['first'][0]))}</code>)")
        parts.append(f'<details open><summary style="font-family:sans-serif">adapter <b>{escape(model)}</b>'
                     f"{note}</summary>{_table(c, model)}</details>")
    return f'<div class="probe-collateral">{title}{legend}{"".join(parts)}</div>'


def collateral_html(c) -> str:
    return styled(collateral_body(c))
