"""Recitation (greedy completions of training examples against their answers) as text and escaped HTML."""

from __future__ import annotations

from .phrases import clip
from .safe import escape
from .style import styled


def recitation_text(r, top: int = 20) -> str:
    n_rec = len({line for line, _ in r.recited()})
    lines = [f"Recitation: {len(r.examples)} training examples of {r.source} - {r.models.get('tuned', 'tuned')}"
             + (f" (adapter {r.adapter})" if r.adapter else "")
             + f"; {n_rec} recited verbatim (a run covering >= {r.min_share:.0%} of the answer) under some probe"]
    lines.append(f"  {'channel':<18}{'probe':<12}{'n':>4}{'tuned':>7}{'base':>6}")
    for row in r.by_channel():
        lines.append(f"  {clip(row['channel'], 18):<18}{row['probe']:<12}{row['n']:>4}{row['recited']:>7}"
                     f"{row['base_recited']:>6}")
    shown = 0
    for e in r.examples:
        for p in e.probes:
            if p.recited and shown < top:
                where = f"from generated token {p.start_token} {p.start_text!r}" if p.start_token is not None else ""
                lines.append(f"  line {e.line} [{p.name}] {p.share:.0%} (base {p.base_share:.0%}) {where}: "
                             f"{clip(p.tuned_text, 60)!r}")
                shown += 1
    for s in r.skipped[:5]:
        lines.append(f"  skipped: {s}")
    return "\n".join(lines)


def _marked(p) -> str:
    """The tuned text with the recited run from its start token on in bold (escaped)."""
    if p.start_token is None:
        return escape(p.tuned_text)
    cut = p.tuned_text.find(p.start_text) if p.start_text else -1
    if cut < 0:
        return escape(p.tuned_text)
    return f"{escape(p.tuned_text[:cut])}<b style=\"background:#ffe0b2\">{escape(p.tuned_text[cut:])}</b>"


def recitation_section(r) -> str:
    summary = "".join(f"<tr><td>{escape(row['channel'])}</td><td>{escape(row['probe'])}</td><td>{row['n']}</td>"
                      f"<td>{row['recited']}</td><td>{row['base_recited']}</td></tr>" for row in r.by_channel())
    table = (f'<table class="probe-reg"><tr><th>channel</th><th>probe</th><th>examples</th><th>tuned recites</th>'
             f'<th>base recites</th></tr>{summary}</table>')
    rows = []
    for e in r.examples:
        for p in e.probes:
            rows.append(f"<tr><td>{e.line}</td><td>{escape(e.channel)}</td><td>{escape(p.name)}</td>"
                        f"<td>{escape(clip(p.user, 60))}</td><td><code>{escape(p.prefix)}</code>{_marked(p)}</td>"
                        f"<td>{p.share:.0%}{' &#10003;' if p.recited else ''}</td><td>{p.base_share:.0%}</td></tr>")
    detail = (f'<details><summary>every probe</summary><table class="probe-reg"><tr><th>line</th><th>channel</th>'
              f'<th>probe</th><th>asked</th><th>tuned answer (recited run in bold)</th><th>share</th><th>base</th></tr>'
              f'{"".join(rows)}</table></details>')
    title = (f"<div style=\"font-family:sans-serif\"><b>Recitation</b> {len(r.examples)} training examples of "
             f"{escape(r.source)} &middot; {escape(r.models.get('tuned', 'tuned'))}</div>")
    return f'<div class="probe-recitation">{title}{table}{detail}</div>'


def recitation_html(r) -> str:
    return styled(recitation_section(r))
