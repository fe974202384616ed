"""A self-contained HTML report of diagnoses: opens offline from file://, no CDN, no script
from elsewhere. Every piece of model or user text is escaped."""

from __future__ import annotations

from collections import Counter
from html import escape

from .card import COLORS
from .text import VERDICT_HEADER, verdict_rows

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
section{{margin:1.5em 0}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def diagnoses_html(results, title: str = "probe report", intro: str = "") -> str:
    counts = Counter(getattr(r, "verdict", "error") for r in results)
    summary = " &middot; ".join(
        f'<b style="color:{COLORS.get(v, "#333")}">{escape(v)}</b>: {n}' for v, n in sorted(counts.items()))
    head = "".join(f"<th>{escape(h)}</th>" for h in VERDICT_HEADER)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in verdict_rows(results))
    cards = []
    for r in results:
        if getattr(r, "verdict", None) == "error":
            cards.append(f"<section><b>ERROR</b> {escape(str(r))}</section>")
        else:
            cards.append(f'<section id="case-{escape(r.case_id or "", quote=True)}">{r._repr_html_()}</section>')
    body = (f"<p>{escape(intro)}</p><p>{summary}</p><table><tr>{head}</tr>{rows}</table>{''.join(cards)}")
    return PAGE.format(title=escape(title), body=body)
