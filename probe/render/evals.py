"""Benchmark flips (probe.evals) as text and escaped HTML: the per-task table, one sample, and
one multiple-choice re-score."""

from __future__ import annotations

from html import escape

from .phrases import clip
from .regression import OUTCOME_COLORS, OUTCOMES
from .style import styled, unstyled


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"


def eval_flips_text(f) -> str:
    lines = [f"Eval flips: {len(f.samples)} samples - {f.runs.get('base', 'base')} -> {f.runs.get('tuned', 'tuned')}",
             f"  {'task':<24}{'metric':<14}" + "".join(f"{o:>8}" for o in OUTCOMES) + f"{'net':>6}{'base':>8}{'tuned':>8}"]
    for row in f.table():
        lines.append(f"  {clip(row['task'], 24):<24}{clip(row['metric'], 13):<14}"
                     + "".join(f"{row[o]:>8}" for o in OUTCOMES)
                     + f"{row['net']:>+6}{_pct(row['base']):>8}{_pct(row['tuned']):>8}")
    for s in f.flips:
        d = s.diagnosis
        why = getattr(d, "verdict", None) or (choice_line(d) if d is not None and hasattr(d, "gold_tokens") else "")
        lines.append(f"  {s.outcome:<7}{s.id}: base {clip(s.base.response, 30)!r} tuned "
                     f"{clip(s.tuned.response, 30)!r} target {clip(s.sample.target, 30)!r}"
                     + (f" - {why}" if why else "") + (f" ({s.note})" if s.note else ""))
    for title, items in (("unmatched", f.unmatched), ("skipped", f.skipped), ("note", f.notes)):
        lines += [f"  {title}: {x}" for x in items]
    return "\n".join(lines)


def _shown(c, i: int) -> str:
    """Choice ``i`` as the reader tells it from the others: stripped, unless another choice
    strips to the same text (choices that differ only by whitespace), then as scored."""
    text = c.choices[i].strip()
    return text if [x.strip() for x in c.choices].count(text) == 1 else c.choices[i]


def choice_line(c) -> str:
    rival = _shown(c, c.rival)
    if c.behind_at is None:
        where = f"the right choice never falls behind {rival!r} under the {c.loser}"
    else:
        where = (f"the right choice falls behind {rival!r} at its token {c.behind_at} "
                 f"({c.gold_tokens[c.behind_at].text!r}) under the {c.loser}")
    check = (f"log re-scored within {c.max_diff:.2g}" if not c.mismatch
             else f"MISMATCH: re-score differs from the log by {c.max_diff:.3g}")
    return f"{where}; {check}"


def choice_scores_text(c) -> str:
    lines = [f"Choices (right: {_shown(c, c.gold)!r}): " + choice_line(c)]
    for i, ch in enumerate(c.choices):
        mark = "*" if i == c.gold else ("x" if i == c.rival else " ")
        lines.append(f"  {mark} {clip(_shown(c, i), 20)!r:<22} base {c.logged['base'][i]:9.4f} (re {c.rescored['base'][i]:9.4f})"
                     f"  tuned {c.logged['tuned'][i]:9.4f} (re {c.rescored['tuned'][i]:9.4f})")
    for j, t in enumerate(c.gold_tokens):
        lines.append(f"    token {j} {t.text!r}: base {t.base_logprob:.4f} tuned {t.tuned_logprob:.4f} ({t.drop:+.4f})")
    if c.note:
        lines.append(f"  note: {c.note}")
    return "\n".join(lines)


def choice_scores_body(c) -> str:
    rows = []
    for i, ch in enumerate(c.choices):
        style = ' style="font-weight:bold"' if i == c.gold else ""
        tag = " (right)" if i == c.gold else (f" ({c.loser}'s pick)" if i == c.rival else "")
        rows.append(f"<tr{style}><td><code>{escape(ch)}</code>{tag}</td>"
                    + "".join(f"<td>{c.logged[r][i]:.4f}</td><td>{c.rescored[r][i]:.4f}</td>" for r in ("base", "tuned"))
                    + "</tr>")
    table = ('<table class="probe-reg"><tr><th>choice</th><th>base (log)</th><th>base (probe)</th>'
             f'<th>tuned (log)</th><th>tuned (probe)</th></tr>{"".join(rows)}</table>')
    cells = []
    for j, t in enumerate(c.gold_tokens):
        mark = "border:2px solid #c62828;" if j == c.behind_at else ""
        cells.append(f'<td style="{mark}"><code>{escape(t.text)}</code><br>{t.base_logprob:.3f} &rarr; '
                     f'{t.tuned_logprob:.3f}<br><span class="probe-badge" style="background:{"#c62828" if t.drop < 0 else "#2e7d32"}">'
                     f'{t.drop:+.3f}</span></td>')
    tokens = f'<table class="probe-reg"><tr><th>right choice, per token<br>base &rarr; tuned</th>{"".join(cells)}</tr></table>'
    mark = ' class="probe-error"' if c.mismatch else ""
    note = f"<div>{escape(c.note)}</div>" if c.note else ""
    return (f'<div class="probe-choices"><div{mark}>{escape(choice_line(c))}</div>'
            f"{table}{tokens}{note}</div>")


def choice_scores_html(c) -> str:
    return styled(choice_scores_body(c))


def _answer(label: str, a, kind: str) -> str:
    raw = f" <small>(generated <code>{escape(clip(a.raw, 120))}</code>)</small>" if a.raw and a.raw != a.response else ""
    metrics = ", ".join(f"{escape(k)} = {v:g}" for k, v in a.metrics.items())
    return f"<li>{label}: <code>{escape(clip(a.response, 200))}</code>{raw} &middot; {metrics}</li>"


def eval_flip_body(s) -> str:
    d = s.diagnosis
    if d is None:
        why = f"<div><i>{escape(s.note or 'not diagnosed')}</i></div>"
    elif hasattr(d, "gold_tokens"):
        why = choice_scores_body(d)
    else:
        why = unstyled(d._repr_html_())
        why += f"<div><i>{escape(s.note)}</i></div>" if s.note else ""
    return (f'<div class="probe-eval-flip" id="probe-ef-{escape(s.id, quote=True)}">'
            f'<div><b class="probe-badge" style="background:{OUTCOME_COLORS[s.outcome]}">{s.outcome}</b> <b>{escape(s.id)}</b> '
            f"({escape(s.sample.kind)}, {escape(s.metric)})</div>"
            f'<pre style="white-space:pre-wrap">{escape(clip(s.sample.prompt, 2000))}</pre>'
            f"<ul><li>target: <code>{escape(s.sample.target)}</code></li>"
            f"{_answer('base', s.base, s.sample.kind)}{_answer('tuned', s.tuned, s.sample.kind)}</ul>{why}</div>")


def eval_flip_text(s) -> str:
    lines = [f"{s.outcome} {s.id} ({s.sample.kind}, {s.metric})", f"  prompt: {clip(s.sample.prompt, 200)!r}",
             f"  target: {s.sample.target!r}",
             f"  base:  {clip(s.base.response, 80)!r} {s.base.metrics}",
             f"  tuned: {clip(s.tuned.response, 80)!r} {s.tuned.metrics}"]
    if s.diagnosis is not None:
        lines += ["  " + x for x in str(s.diagnosis).splitlines()]
    if s.note:
        lines.append(f"  note: {s.note}")
    return "\n".join(lines)


def eval_flip_html(s) -> str:
    return styled(eval_flip_body(s))


def eval_flips_body(f) -> str:
    head = "".join(f'<th><span class="probe-badge" style="background:{OUTCOME_COLORS[o]}">{o}</span></th>' for o in OUTCOMES)
    rows = []
    for row in f.table():
        cells = []
        for o in OUTCOMES:
            items = f.cell(row["task"], o)
            if not items or o in ("kept", "never"):
                cells.append(f"<td>{len(items)}</td>")
                continue
            links = ", ".join(f'<a href="#probe-ef-{escape(s.id, quote=True)}">{escape(s.id)}</a>' for s in items)
            cells.append(f'<td><details><summary>{len(items)}</summary><div class="probe-ids">{links}</div></details></td>')
        name = f"<b>{escape(row['task'])}</b>" if row["task"] == "all" else escape(row["task"])
        rows.append(f"<tr><td>{name}</td><td>{escape(row['metric'])}</td>{''.join(cells)}<td>{row['net']:+d}</td>"
                    f"<td>{_pct(row['base'])}</td><td>{_pct(row['tuned'])}</td></tr>")
    table = (f'<table class="probe-reg"><tr><th>task</th><th>metric</th>{head}<th>net</th><th>base</th>'
             f'<th>tuned</th></tr>{"".join(rows)}</table>')
    extra = "".join(f"<li>{escape(t)}: {escape(x)}</li>" for t, items in
                    (("unmatched", f.unmatched), ("skipped", f.skipped), ("note", f.notes)) for x in items)
    extra = f'<ul class="probe-error">{extra}</ul>' if extra else ""
    flips = "".join(eval_flip_body(s) for s in f.flips)
    flips = f"<details><summary>{len(f.flips)} flipped samples</summary>{flips}</details>" if flips else ""
    title = (f'<div style="font-family:sans-serif"><b>Eval flips</b> {len(f.samples)} samples &middot; '
             f"{escape(f.runs.get('base', 'base'))} &rarr; {escape(f.runs.get('tuned', 'tuned'))}</div>")
    return f'<div class="probe-eval-flips">{title}{table}{extra}{flips}</div>'


def eval_flips_html(f) -> str:
    return styled(eval_flips_body(f))
