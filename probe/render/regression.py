"""The regression table (lost / gained / kept / never by tag) as text and escaped HTML."""

from __future__ import annotations

from .safe import escape

from .style import styled

from ..core.vocab import Outcome, words
from .phrases import clip as _clip

OUTCOMES = words(Outcome)

OUTCOME_COLORS = {"lost": "#c62828", "gained": "#2e7d32", "kept": "#546e7a", "never": "#616161"}  # badges


def regression_text(r) -> str:
    lines = [f"Regression: {len(r.cases)} cases - {r.models.get('base', 'base')} -> "
             f"{r.models.get('tuned', 'tuned')}" + (f" (adapter {r.adapter})" if r.adapter else "")]
    lines.append(f"  {'tag':<20}" + "".join(f"{o:>8}" for o in OUTCOMES) + f"{'net':>6}")
    for row in r.table():
        lines.append(f"  {_clip(row['tag'], 20):<20}" + "".join(f"{row[o]:>8}" for o in OUTCOMES)
                     + f"{row['net']:>+6}")
    for e in r.errors:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


def case_anchor(case_id: str) -> str:
    return f"#case-{case_id}"


def regression_body(r, href=None) -> str:
    """The table; every non-empty cell opens to links to its cases.

    Args:
        href: case id -> link target (default: this block's own case list, ``#probe-rc-ID``).
    """
    own = href is None
    href = href or (lambda cid: f"#probe-rc-{cid}")
    head = "".join(f'<th><span class="probe-badge" style="background:{OUTCOME_COLORS[o]}">{o}</span></th>' for o in OUTCOMES)
    rows = []
    for row in r.table():
        cells = []
        for o in OUTCOMES:
            ids = r.cell(row["tag"], o)
            if not ids:
                cells.append("<td>0</td>")
                continue
            links = ", ".join(f'<a href="{escape(href(i), quote=True)}">{escape(i)}</a>' for i in ids)
            cells.append(f'<td><details><summary>{len(ids)}</summary><div class="probe-ids">{links}'
                         f'</div></details></td>')
        tag = f"<b>{escape(row['tag'])}</b>" if row["tag"] == "all" else escape(row["tag"])
        rows.append(f"<tr><td>{tag}</td>{''.join(cells)}<td>{row['net']:+d}</td></tr>")
    table = (f'<table class="probe-reg"><tr><th>tag</th>{head}<th>net</th></tr>{"".join(rows)}</table>')
    errors = "".join(f"<li>{escape(e)}</li>" for e in r.errors)
    errors = f'<ul class="probe-error">{errors}</ul>' if errors else ""
    listing = ""
    if own:
        items = "".join(
            f'<li id="probe-rc-{escape(c.id, quote=True)}"><b class="probe-badge" style="background:{OUTCOME_COLORS[c.outcome]}">'
            f'{c.outcome}</b> {escape(c.id)}: base <code>{escape(_clip(c.base_text, 80))}</code> '
            f'({escape(c.base_reason)}); tuned <code>{escape(_clip(c.tuned_text, 80))}</code> '
            f'({escape(c.tuned_reason)})</li>' for c in r.cases)
        listing = f'<details><summary>cases</summary><ul style="font-size:85%">{items}</ul></details>'
    title = (f"<div style=\"font-family:sans-serif\"><b>Regression</b> {len(r.cases)} cases &middot; "
             f"{escape(r.models.get('base', 'base'))} &rarr; {escape(r.models.get('tuned', 'tuned'))}"
             f"{' (adapter ' + escape(r.adapter) + ')' if r.adapter else ''}</div>")
    return f"<div class=\"probe-regression\">{title}{table}{errors}{listing}</div>"


def regression_html(r, href=None) -> str:
    return styled(regression_body(r, href))
