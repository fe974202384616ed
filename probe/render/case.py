"""A saved case as one HTML block: header (inputs, models, note), then each result's view.

Every piece of model or user text goes through ``html.escape``; no script.
"""

from __future__ import annotations

from html import escape

from .card import COLORS, diagnosis_html
from .strip import _STYLE, comparison_html, divergence_html, trace_divergence_html, trace_html
from .svg import trace_svg

_CASE_STYLE = (
    "<style>.probe-case{font-family:sans-serif;border:1px solid #ddd;border-radius:6px;"
    "padding:8px 12px;margin:12px 0}.probe-case h2{font-size:110%;margin:0 0 4px}"
    ".probe-badge{color:#fff;border-radius:3px;padding:1px 6px;font-size:85%}"
    ".probe-tag{background:#eee;border-radius:3px;padding:1px 5px;margin-right:4px;font-size:85%}"
    ".probe-kv td{padding:1px 8px 1px 0;vertical-align:top;border:none}"
    ".probe-kv code{white-space:pre-wrap;word-break:break-word}"
    ".probe-note{white-space:pre-wrap;background:#fffbe6;padding:4px 6px;border-radius:4px}"
    ".probe-result{margin-top:10px}.probe-result>h3{font-size:100%;margin:4px 0;color:#444}</style>"
)


def badge(verdict: str | None) -> str:
    if not verdict:
        return ""
    return (f'<span class="probe-badge" style="background:{COLORS.get(verdict, "#555")}">'
            f'{escape(verdict)}</span>')


def _prompt(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def _inputs(case) -> str:
    rows = []
    for key, value in (("prompt", case.prompt), ("expected", case.expected), ("forced prefix", case.force),
                       ("base continues", case.base_prompt), ("check", case.check)):
        if value is not None:
            text = _prompt(value) if key == "prompt" else str(value)
            rows.append(f"<tr><td>{key}</td><td><code>{escape(text)}</code></td></tr>")
    for m in case.models:
        adapter = f" + adapter <code>{escape(m.adapter)}</code>" if m.adapter else ""
        rows.append(f"<tr><td>{escape(m.role)}</td><td>{escape(m.name)}{adapter} "
                    f"<small>({escape(m.dtype or '?')}, fingerprint {escape(m.fingerprint or 'none')})</small>"
                    f"</td></tr>")
    made = ", ".join(f"{k} {v}" for k, v in case.versions.items())
    rows.append(f"<tr><td>made</td><td><small>{escape(case.created)} &middot; {escape(made)}</small></td></tr>")
    return f'<table class="probe-kv">{"".join(rows)}</table>'


def _expected_charts(d) -> str:
    parts = []
    for model in ("tuned", "base"):
        trace = d.expected_traces.get(model)
        if trace is None:
            continue
        div = d.divergence(model)
        parts.append(trace_svg(trace, mark=div.index if div.diverged else None,
                               label=f"{model}: P(expected token) per token"))
    return "".join(parts)


def result_html(result) -> str:
    """The rich view of one result, charts included (no script)."""
    kind = type(result).__name__
    if kind == "Diagnosis":
        return diagnosis_html(result) + _expected_charts(result)
    if kind == "TokenTrace":
        return trace_html(result) + trace_svg(result, label="P(token) per token")
    if kind == "Divergence":
        return divergence_html(result) + trace_svg(result.trace, mark=result.index)
    if kind == "TraceDivergence":
        return trace_divergence_html(result)
    if kind == "Comparison":
        return (comparison_html(result) + trace_svg(result.tuned, label="tuned")
                + trace_svg(result.base, label="base"))
    return result._repr_html_()


def case_html(case) -> str:
    tags = "".join(f'<span class="probe-tag">{escape(t)}</span>' for t in case.tags)
    title = case.title or case.id
    head = (f"<h2>{badge(case.verdict)} {escape(title)} <small style=\"color:#777\">{escape(case.id)}"
            f"</small></h2>{tags}")
    note = f'<div class="probe-note">{escape(case.note)}</div>' if case.note else ""
    results = "".join(f'<div class="probe-result"><h3>{escape(name)}</h3>{result_html(r)}</div>'
                      for name, r in case.results.items())
    return f'{_STYLE}{_CASE_STYLE}<div class="probe-case">{head}{note}{_inputs(case)}{results}</div>'
