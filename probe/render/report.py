"""One self-contained HTML page of saved cases: opens offline from file://.

No CDN, no script from elsewhere: the charts are inline SVG and the filters (by verdict, by
tag, by text) are a few lines of plain JavaScript that only show and hide sections. Every
piece of model or user text is escaped; none of it reaches the script. The style block is on
the page once; each case's HTML is its body (:func:`probe.render.case.case_body`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from .safe import encodable, escape

from .case import badge, case_body
from .card import COLORS
from .phrases import clip, headline_cells
from .style import STYLE
from .text import run_cell
from .shift import report_sections

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{style}</head>
<body><h1>{title}</h1>{body}
<script>
(function () {{
  var boxes = document.querySelectorAll('.probe-filters input[type=checkbox]');
  var tagSel = document.getElementById('probe-tag');
  var text = document.getElementById('probe-text');
  var shown = document.getElementById('probe-shown');
  function apply() {{
    var verdicts = {{}};
    boxes.forEach(function (b) {{ verdicts[b.value] = b.checked; }});
    var tag = tagSel.value, q = text.value.toLowerCase(), n = 0;
    document.querySelectorAll('[data-verdict]').forEach(function (el) {{
      var tags = JSON.parse(el.getAttribute('data-tags'));
      var ok = verdicts[el.getAttribute('data-verdict')] !== false
        && (tag === '' || tags.indexOf(tag) >= 0)
        && (q === '' || el.textContent.toLowerCase().indexOf(q) >= 0);
      el.classList.toggle('probe-hidden', !ok);
      if (ok && el.tagName === 'SECTION') n += 1;
    }});
    shown.textContent = n;
  }}
  boxes.forEach(function (b) {{ b.addEventListener('change', apply); }});
  tagSel.addEventListener('change', apply);
  text.addEventListener('input', apply);
  apply();
}})();
</script></body></html>
"""


_PAGE_CSS = (  # the page's own rules, in its one style block
    "body{font-family:sans-serif;max-width:78em;margin:1em auto;padding:0 1em;color:#222}"
    "table.probe-summary{border-collapse:collapse;font-size:90%}"
    ".probe-summary td,.probe-summary th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}"
    ".probe-filters{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ddd;padding:6px 0;z-index:20}"
    ".probe-filters label{margin-right:10px} .probe-errors{color:#b00020}"
    ".probe-hidden{display:none}"
)


def _attrs(case) -> str:
    verdict = case.verdict or "none"
    return (f'data-verdict="{escape(verdict, quote=True)}" '
            f'data-tags="{escape(json.dumps(list(case.tags)), quote=True)}"')


RUN_COLUMNS = ("tuned", "tuned_forced", "base", "base_forced")


def case_row(case) -> list[str]:
    """The summary-table cells of a case: what the verdict rests on, its labels, where it goes
    wrong, each run's ``PASS|fail k/n p=P(expected) rRANK``, and the note."""
    where, _, _ = headline_cells(case.headline)
    rests, runs = "", [""] * len(RUN_COLUMNS)
    d = next((r for r in case.results.values() if hasattr(r, "runs") and hasattr(r, "summary")), None)
    if d is not None:
        rests = d.summary.split(": ", 1)[-1]
        runs = ["" if d.run(n) is None else run_cell(d.run(n)) for n in RUN_COLUMNS]
    return [rests, ", ".join(case.labels), clip(where, 50), *runs, clip(case.note, 80)]


SUMMARY_HEADER = ("case", "verdict", "rests on", "labels", "tags", "first divergent token (tuned)",
                  "tuned", "tuned forced", "base", "base forced", "note")


def _summary_row(case) -> str:
    rests, labels, where, *runs, note = (escape(c) for c in case_row(case))
    tags = escape(", ".join(case.tags))
    cells = "".join(f"<td>{c}</td>" for c in runs)
    return (f'<tr {_attrs(case)}><td><a href="#case-{escape(case.id, quote=True)}">'
            f'{escape(case.title or case.id)}</a></td><td>{badge(case.verdict)}</td>'
            f'<td>{rests}</td><td>{labels}</td><td>{tags}</td>'
            f'<td><code>{where}</code></td>{cells}<td>{note}</td></tr>')


def _filters(cases) -> str:
    verdicts = Counter(c.verdict or "none" for c in cases)
    order = [v for v in COLORS if v in verdicts] + sorted(v for v in verdicts if v not in COLORS)
    boxes = "".join(f'<label><input type="checkbox" value="{escape(v, quote=True)}" checked> '
                    f'{badge(v) if v != "none" else "no verdict"} {verdicts[v]}</label>' for v in order)
    tags = Counter(t for c in cases for t in c.tags)
    options = "".join(f'<option value="{escape(t, quote=True)}">{escape(t)} ({n})</option>'
                      for t, n in sorted(tags.items()))
    return (f'<div class="probe-filters">{boxes}<label>tag <select id="probe-tag"><option value="">'
            f'any</option>{options}</select></label><label>text <input id="probe-text" type="search" '
            f'placeholder="filter by any text"></label> showing <b id="probe-shown">{len(cases)}</b> '
            f'of {len(cases)}</div>')


def _renders(case) -> tuple[str, str] | str:
    """(summary row, section) of a case, or why it cannot be shown (a malformed case)."""
    try:
        return _summary_row(case), (f'<section id="case-{escape(case.id, quote=True)}" {_attrs(case)}>'
                                    f'{case_body(case)}</section>')
    except Exception as err:  # noqa: BLE001 - one case's data, named, never the whole page
        return f"case {getattr(case, 'id', '?')}: cannot be shown ({type(err).__name__}: {err})"


def casebook_html(cases, *, title: str = "probe report", intro: str = "", errors=(), sections=()) -> str:
    """The whole page for ``cases`` (probe.Case objects). ``errors``: unreadable files, listed.

    ``sections``: corpus-level results (Shift, Regression) shown after the summary table.
    A case whose data cannot be shown is left out and listed with the errors, named.
    """
    shown, rendered, errors = [], [], list(errors)
    for case in cases:
        out = _renders(case)
        if isinstance(out, str):
            errors.append(out)
        else:
            shown.append(case)
            rendered.append(out)
    cases = shown
    tag_counts = Counter(t for c in cases for t in c.tags)
    by_tag = ", ".join(f"{escape(t)}: {n}" for t, n in sorted(tag_counts.items())) or "none"
    parts = [f"<p>{escape(intro)}</p>" if intro else "",
             f"<p>{len(cases)} cases &middot; by tag: {by_tag} &middot; made "
             f"{escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>"]
    if errors:
        items = "".join(f"<li>{escape(str(e))}</li>" for e in errors)
        parts.append(f'<div class="probe-errors"><b>{len(errors)} case(s) could not be read or shown:</b>'
                     f'<ul>{items}</ul></div>')
    head = "".join(f"<th>{h}</th>" for h in SUMMARY_HEADER)
    parts += [_filters(cases), f'<table class="probe-summary"><tr>{head}</tr>'
                               f'{"".join(row for row, _ in rendered)}</table>']
    if sections:
        parts.append(report_sections(sections, {c.id for c in cases}))
    parts += [section for _, section in rendered]
    return encodable(PAGE.format(title=escape(title), style=STYLE.replace("</style>", _PAGE_CSS + "</style>"),
                                 body="".join(parts)))
