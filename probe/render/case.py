"""A saved case as one HTML block: header (inputs, models, note), then each result's section.

Each result's section comes from its type's record in :mod:`probe.core.registry`; the built-in
types' sections (their view plus per-token charts) are here. Every piece of model or user
text goes through ``probe.render.safe.escape``; no script.
"""

from __future__ import annotations

from .safe import escape

from ..core.registry import type_of
from .card import COLORS, diagnosis_body
from .strip import comparison_body, divergence_body, strip_html, trace_body, trace_divergence_body
from .style import styled, unstyled


def badge(verdict: str | None) -> str:
    if not verdict:
        return ""
    return (f'<span class="probe-badge" style="background:{COLORS.get(verdict, "#555")}">'
            f'{escape(verdict)}</span>')


def _prompt(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def models_line(case) -> str:
    """The case's models and the versions that made it, as HTML (once on a page whose cases
    share them)."""
    ms = "; ".join(f"{escape(m.role)}: {escape(m.name)}"
                   + (f" + adapter <code>{escape(m.adapter)}</code>" if m.adapter else "")
                   + f" <small>({escape(m.dtype or '?')}, fingerprint {escape(m.fingerprint or 'none')})</small>"
                   for m in case.models)
    made = ", ".join(f"{k} {v}" for k, v in case.versions.items())
    return f"{ms} &middot; made with {escape(made)}" if ms else f"made with {escape(made)}"


def _inputs(case, shared: bool = False) -> str:
    rows = []
    for key, value in (("prompt", case.prompt), ("expected", case.expected), ("forced prefix", case.force),
                       ("base continues", case.base_prompt), ("check", case.check)):
        if value is not None:
            text = _prompt(value) if key == "prompt" else str(value)
            rows.append(f"<tr><td>{key}</td><td><code>{escape(text)}</code></td></tr>")
    for m in () if shared else case.models:
        adapter = f" + adapter <code>{escape(m.adapter)}</code>" if m.adapter else ""
        rows.append(f"<tr><td>{escape(m.role)}</td><td>{escape(m.name)}{adapter} "
                    f"<small>({escape(m.dtype or '?')}, fingerprint {escape(m.fingerprint or 'none')})</small>"
                    f"</td></tr>")
    made = "" if shared else " &middot; " + escape(", ".join(f"{k} {v}" for k, v in case.versions.items()))
    rows.append(f"<tr><td>made</td><td><small>{escape(case.created)}{made}</small></td></tr>")
    return f'<table class="probe-kv">{"".join(rows)}</table>'


# -- the built-in types' sections (each registered in its type's own module) -------------------------

def diagnosis_section(d) -> str:
    """The card, then the expected answer token by token under each model (after the chat
    prompt, the same input for both), where each model would leave it marked."""
    parts = [diagnosis_body(d)]
    for model in ("tuned", "base"):
        trace = d.expected_traces.get(model)
        if trace is None:
            continue
        div = d.divergence(model)
        parts.append(f'<div class="probe-head">{escape(model)}: P(expected token) after the prompt</div>'
                     + strip_html(trace, mark=div.index if div.diverged else None, colour="expected"))
    return "".join(parts)


def trace_section(t) -> str:
    return trace_body(t)


def divergence_section(d) -> str:
    return divergence_body(d)


def trace_divergence_section(d) -> str:
    return trace_divergence_body(d)


def comparison_section(c) -> str:
    return comparison_body(c)


def result_html(result) -> str:
    """The section of one result (its view, charts included; no style block, no script)."""
    kind = type_of(result)
    return kind.section(result) if kind.section is not None else unstyled(result._repr_html_())


def case_body(case, *, shared: bool = False) -> str:
    """The case's HTML without the style block (a page of many cases has it once).
    ``shared``: the page shows the models and versions once, so the case leaves them out."""
    tags = "".join(f'<span class="probe-tag">{escape(t)}</span>' for t in case.tags)
    title = case.title or case.id
    head = (f"<h2>{badge(case.verdict)} {escape(title)} <small class=\"probe-id\">{escape(case.id)}"
            f"</small></h2>{tags}")
    note = f'<div class="probe-note">{escape(case.note)}</div>' if case.note else ""
    results = "".join(f'<div class="probe-result"><h3>{escape(name)}</h3>{result_html(r)}</div>'
                      for name, r in case.results.items())
    return f'<div class="probe-case">{head}{note}{_inputs(case, shared)}{results}</div>'


def case_html(case) -> str:
    """One case on its own (a notebook output, the casebook browser)."""
    return styled(case_body(case))
