"""The diagnosis card: the four runs, their check reasons, and the verdict in words."""

from __future__ import annotations

from .safe import escape

from .phrases import as_html, expected_phrase
from .palette import VERDICT_COLORS
from .strip import run_strip_html
from .style import styled
from .text import RUN_LABELS, run_evidence

COLORS = VERDICT_COLORS  # the verdicts' badge colours (white text on each)


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def _where(d, run) -> str:
    """Which prompt this run's P(expected) was measured in (a chat prompt or a base
    continuation), so two numbers side by side say what they compare."""
    if run.force:
        return " <small>(after the prompt and the forced prefix)</small>"
    if run.model != "tuned" and d.base_prompt is not None:
        return " <small>(continuing the base prompt as raw text)</small>"
    return " <small>(after the prompt)</small>"


def diagnosis_body(d) -> str:
    """The card without the style block (see probe.render.style)."""
    color = COLORS.get(d.verdict, "#333")
    parts = [
        f'<div class="probe-card" style="border-left:6px solid {color};padding:4px 10px;font-family:sans-serif">',
        f'<div><b class="probe-badge" style="background:{color}">{escape(d.verdict.upper())}</b> '
        f'{escape(d.case_id or "")} &middot; {escape(d.explanation)}</div>',
        f'<div class="probe-head"><b>{escape(d.summary)}</b>'
        + (f' &middot; labels: <b>{escape(", ".join(d.labels))}</b>' if d.labels else "")
        + (f' &middot; {d.samples} samples per run, temperature {d.temperature:g}, seed {d.seed}'
           if d.samples else "") + "</div>",
        f'<div class="probe-head">prompt: <code>{escape(_prompt_text(d.prompt))}</code>'
        + (f' &middot; base continues: <code>{escape(d.base_prompt)}</code>' if d.base_prompt else "")
        + f' &middot; check: <code>{escape(d.check)}</code></div>',
    ]
    for r in d.runs:
        mark = "&#10004;" if r.passed else "&#10008;"
        force = f" forced <code>{escape(r.force)}</code>" if r.force else ""
        where = _where(d, r)
        parts.append(f'<div class="probe-head">{mark} <b>{escape(RUN_LABELS.get(r.name, r.name))}</b>{force}'
                     f'{where}: {escape(r.reason)}</div>')
        parts.append(f'<div class="probe-head">{escape(run_evidence(r))}</div>')
        parts.append(run_strip_html(r))
    for model in ("tuned", "base"):
        phrase = expected_phrase(d, model)
        if phrase is not None:
            parts.append(f'<div class="probe-head">{as_html(phrase)}</div>')
    gain = d.expected_gain()
    if gain is not None:
        parts.append(f'<div class="probe-head">log P(expected) tuned - base: {gain:+.2f} nats</div>')
    if d.sweep is not None:
        kept = sum(r.watch_is_greedy for r in d.sweep.rows)
        values = ", ".join(f"{'/'.join(r.values)}: {r.prob:.2g}" for r in d.sweep.rows)
        parts.append(f'<div class="probe-head">sweep: <code>{escape(d.sweep.watch)}</code> stays greedy '
                     f'for {kept}/{len(d.sweep.rows)} swept values ({escape(values)})</div>')
    parts.append("</div>")
    return "".join(parts)


def diagnosis_html(d) -> str:
    """The card on its own (``Diagnosis._repr_html_``)."""
    return styled(diagnosis_body(d))
