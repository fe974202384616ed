"""One self-contained HTML page of saved cases: opens offline from file://.

No CDN, no script from elsewhere: the charts are inline SVG and the filters (by verdict, by
tag, by text) are a few lines of plain JavaScript that only show and hide sections. Every
piece of model or user text is escaped; none of it reaches the script. The style block is on
the page once; each case's HTML is its body (:func:`probe.render.case.case_body`).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from .safe import encodable, escape

from .case import badge, case_body, models_line
from .card import COLORS
from .phrases import clip, wrong_line
from .style import STYLE
from .text import run_cell
from .shift import report_section_parts

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{style}</head>
<body class="probe-view tex2jax_ignore mathjax_ignore"><h1 id="top">{title}</h1>{body}
<script>
(function () {{
  var boxes = document.querySelectorAll('.probe-filters input[type=checkbox]');
  var tagSel = document.getElementById('probe-tag');
  var text = document.getElementById('probe-text');
  var shown = document.getElementById('probe-shown');
  // a case is its summary row and its section; the text filter reads what a reader sees
  // (taken before any filter hides anything: no hover cards, no tooltips, no file paths)
  var cases = {{}};
  document.querySelectorAll('[data-case]').forEach(function (el) {{
    var id = el.getAttribute('data-case');
    var c = cases[id] = cases[id] || {{els: [], text: ''}};
    c.els.push(el);
    c.text += ' ' + el.innerText.toLowerCase();
  }});
  function apply() {{
    var verdicts = {{}};
    boxes.forEach(function (b) {{ verdicts[b.value] = b.checked; }});
    var tag = tagSel.value, q = text.value.toLowerCase().trim(), n = 0;
    Object.keys(cases).forEach(function (id) {{
      var c = cases[id], el = c.els[0];
      var tags = JSON.parse(el.getAttribute('data-tags'));
      var ok = verdicts[el.getAttribute('data-verdict')] !== false
        && (tag === '' || tags.indexOf(tag) >= 0)
        && (q === '' || c.text.indexOf(q) >= 0);
      c.els.forEach(function (e) {{ e.classList.toggle('probe-hidden', !ok); }});
      if (ok) n += 1;
    }});
    shown.textContent = n;
  }}
  boxes.forEach(function (b) {{ b.addEventListener('change', apply); }});
  tagSel.addEventListener('change', apply);
  text.addEventListener('input', apply);
  apply();
  // a hover card opens where it fits: above its token near the bottom, leftwards near the right
  document.addEventListener('mouseover', function (e) {{
    var tok = e.target.closest ? e.target.closest('.probe-tok') : null;
    var tip = tok ? tok.querySelector('.probe-tip') : null;
    if (!tip) return;
    tip.classList.remove('probe-up', 'probe-left');
    var r = tip.getBoundingClientRect();
    if (r.bottom > window.innerHeight) tip.classList.add('probe-up');
    if (r.right > document.documentElement.clientWidth) tip.classList.add('probe-left');
  }});
}})();
</script></body></html>
"""


_PAGE_CSS = (  # the page's own rules, in its one style block
    "body.probe-view{font-family:sans-serif;max-width:78em;margin:1em auto;padding:0 1em;background:#fff}"
    "html{scroll-padding-top:0}[id]{scroll-margin-top:7em}"  # anchors land below the sticky filter bar
    "table.probe-summary{border-collapse:collapse;font-size:90%}"
    ".probe-summary td,.probe-summary th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}"
    ".probe-summary td{white-space:nowrap}.probe-summary td.probe-what,.probe-summary td.probe-notecell"
    "{white-space:normal;min-width:14em}"
    ".probe-filters{position:sticky;top:0;background:#f4f4f4;border-bottom:1px solid #ccc;padding:6px 0;z-index:20}"
    ".probe-filters label{margin-right:10px;white-space:nowrap}"
    ".probe-hidden{display:none}"
    ".probe-toc{margin:8px 0}.probe-toc li{margin:2px 0}"
    ".probe-top{float:right;font-size:85%;font-weight:normal;margin-left:8px}"
    ".probe-case table,.probe-corpus table{display:block;overflow-x:auto;max-width:100%}"
    ".probe-corpus{overflow-wrap:anywhere}"
)


def _attrs(case) -> str:
    verdict = case.verdict or "none"
    return (f'data-case="{escape(case.id, quote=True)}" data-verdict="{escape(verdict, quote=True)}" '
            f'data-tags="{escape(json.dumps(list(case.tags)), quote=True)}"')


_NUMBER = re.compile(r"(?<![#\w])\d[\d.]*(?:e[+-]\d+)?")  # a number in escaped text (not &#x27;)
RUN_COLUMNS = ("tuned", "tuned_forced", "base", "base_forced")


def case_row(case) -> list[str]:
    """The summary-table cells of a case: what went wrong (one line), what the verdict rests on,
    each run's ``PASS|fail k/n p=P(expected) rRANK``, its labels and the note."""
    rests, runs = "", [""] * len(RUN_COLUMNS)
    d = next((r for r in case.results.values() if hasattr(r, "runs") and hasattr(r, "summary")), None)
    if d is not None:
        rests = d.summary.split(": ", 1)[-1]
        runs = ["" if d.run(n) is None else run_cell(d.run(n)) for n in RUN_COLUMNS]
    return [wrong_line(case.headline), rests, *runs, ", ".join(case.labels), clip(case.note, 80)]


RUN_KEY_HTML = ('<div class="probe-legend">each run: PASS|fail = its greedy answer checked; k/n = samples right; '
                'p = P(expected) measured where that run answers (tuned: after the chat prompt; forced runs: after '
                'the forced prefix; base: after its base_prompt as raw text when the case gives one, else the chat '
                'prompt); rN = rank of the expected first token there</div>')

SUMMARY_HEADER = ("case", "verdict", "what went wrong", "rests on", "tuned", "tuned forced", "base",
                  "base forced", "labels", "note")


def _summary_row(case) -> str:
    what, rests, *rest = (escape(c) for c in case_row(case))
    runs, (labels, note) = rest[:len(RUN_COLUMNS)], rest[len(RUN_COLUMNS):]
    cells = "".join(f'<td class="probe-num">{c}</td>' for c in runs)
    what = _NUMBER.sub(r'<span class="probe-num">\g<0></span>', what)  # 1.4e-06 never breaks
    return (f'<tr {_attrs(case)}><td><a href="#case-{escape(case.id, quote=True)}">'
            f'{escape(case.title or case.id)}</a></td><td>{badge(case.verdict)}</td>'
            f'<td class="probe-what">{what}</td><td>{rests}</td>{cells}<td>{labels}</td>'
            f'<td class="probe-notecell">{note}</td></tr>')


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
            f'placeholder="filter by shown text"></label> <span class="probe-num">showing <b id="probe-shown">'
            f'{len(cases)}</b> of {len(cases)} cases</span></div>')


def _shared_models(cases) -> str | None:
    """The models-and-versions line when every case has the same one (shown once), else None."""
    lines = {models_line(c) for c in cases}
    return lines.pop() if len(lines) == 1 and cases else None


def _renders(case, shared: bool) -> tuple[str, str] | str:
    """(summary row, section) of a case, or why it cannot be shown (a malformed case)."""
    try:
        return _summary_row(case), (f'<section id="case-{escape(case.id, quote=True)}" {_attrs(case)}>'
                                    f'<a class="probe-top" href="#top">&uarr; top</a>'
                                    f'{case_body(case, shared=shared)}</section>')
    except Exception as err:  # noqa: BLE001 - one case's data, named, never the whole page
        return f"case {getattr(case, 'id', '?')}: cannot be shown ({type(err).__name__}: {err})"


def _toc(corpus, n_cases: int) -> str:
    items = ['<li><a href="#probe-cases-table">Cases at a glance: what went wrong in each</a></li>']
    items += [f'<li><a href="#{escape(anchor, quote=True)}">{escape(title)}</a></li>' for anchor, title, _ in corpus]
    if n_cases:
        items.append(f'<li><a href="#probe-cases">The cases one by one ({n_cases}): runs, token strips, '
                     f'evidence</a></li>')
    return f'<nav class="probe-toc"><b>Contents</b><ul>{"".join(items)}</ul></nav>'


def casebook_html(cases, *, title: str = "probe report", intro: str = "", errors=(), sections=()) -> str:
    """The whole page for ``cases`` (probe.Case objects). ``errors``: unreadable files, listed.

    ``sections``: corpus-level results (Shift, Regression, TrainingLog, ...) shown after the
    summary table, each titled for a reader and listed in the contents.
    A case whose data cannot be shown is left out and listed with the errors, named.
    """
    cases, errors = list(cases), list(errors)
    models = _shared_models(cases)
    shown, rendered = [], []
    for case in cases:
        out = _renders(case, shared=models is not None)
        if isinstance(out, str):
            errors.append(out)
        else:
            shown.append(case)
            rendered.append(out)
    cases = shown
    tag_counts = Counter(t for c in cases for t in c.tags)
    by_tag = ", ".join(f"{escape(t)}: {n}" for t, n in sorted(tag_counts.items())) or "none"
    corpus = report_section_parts(sections, {c.id for c in cases}) if sections else []
    parts = [f"<p>{escape(intro)}</p>" if intro else "",
             f"<p>{len(cases)} cases &middot; by tag: {by_tag} &middot; made "
             f"{escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>",
             f"<p>{models}</p>" if models else ""]
    if errors:
        items = "".join(f"<li>{escape(str(e))}</li>" for e in errors)
        parts.append(f'<div class="probe-errors"><b>{len(errors)} case(s) could not be read or shown:</b>'
                     f'<ul>{items}</ul></div>')
    parts.append(_toc(corpus, len(cases)))
    head = "".join(f"<th>{h}</th>" for h in SUMMARY_HEADER)
    parts += [_filters(cases), '<h2 id="probe-cases-table">Cases at a glance</h2>',
              f'<div class="probe-scroll"><table class="probe-summary"><tr>{head}</tr>'
              f'{"".join(row for row, _ in rendered)}</table></div>', RUN_KEY_HTML]
    parts += [html.replace("<h2>", '<h2><a class="probe-top" href="#top">&uarr; top</a>', 1) for _, _, html in corpus]
    if cases:
        parts.append('<h2 id="probe-cases">The cases one by one</h2>')
    parts += [section for _, section in rendered]
    return encodable(PAGE.format(title=escape(title), style=STYLE.replace("</style>", _PAGE_CSS + "</style>"),
                                 body="".join(parts)))
