"""The verdict table of many diagnoses as HTML (a notebook's output): the same rows as the
terminal's :func:`probe.render.text.verdict_table`, in a table that scrolls instead of wrapping
mid-word, each verdict on its badge. In a notebook (notebook 02)::

    from IPython.display import HTML
    HTML(verdict_table_html(probe.diagnose_many(base, tuned, cases)))
"""

from __future__ import annotations

from .palette import VERDICT_COLORS
from .safe import escape
from .style import styled
from .text import VERDICT_HEADER, verdict_rows


def _cell(i: int, cell: str) -> str:
    if VERDICT_HEADER[i] == "verdict" and cell:
        color = VERDICT_COLORS.get(cell, "#616161" if cell != "ERROR" else "#c62828")
        return f'<td><span class="probe-badge" style="background:{color}">{escape(cell)}</span></td>'
    nowrap = ' class="probe-num"' if VERDICT_HEADER[i] in ("tuned", "tuned forced", "base", "base forced") else ""
    return f"<td{nowrap}>{escape(cell)}</td>"


def verdict_table_html(results) -> str:
    """One row per ``diagnose_many`` result, as an HTML table in a scroll container."""
    head = "".join(f"<th>{escape(h)}</th>" for h in VERDICT_HEADER)
    rows = "".join("<tr>" + "".join(_cell(i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in verdict_rows(results))
    key = ("<div class=\"probe-legend\">each run: PASS|fail (greedy), k/n samples right, "
           "p = P(expected) where that run answers, r = its first token's rank</div>")
    return styled(f'<div class="probe-scroll"><table class="probe-table"><tr>{head}</tr>{rows}</table></div>{key}')
