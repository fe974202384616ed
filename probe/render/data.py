"""Views of DataCounts: a plain-text table and an escaped HTML table. Pure.

Rows of the pair matrix are patterns found in answers, columns patterns found in the same
records' questions.
"""

from __future__ import annotations

from .safe import escape

from .safe import encodable
from .style import styled
from .text import show


def _head(c) -> str:
    line = f"DataCounts of {c.source}: {c.records} question/answer records"
    if c.text_records:
        line += f", {c.text_records} plain text"
    if c.blank:
        line += f", {c.blank} blank"
    if c.skipped:
        shown = ", ".join(str(s.line) for s in c.skipped_lines)
        line += f", {c.skipped} skipped (first: {shown})"
    return line


def data_text(c) -> str:
    labels = [show(p.pattern) for p in c.patterns]
    width = max(12, *(len(x) for x in labels))
    lines = [_head(c), f"  {'pattern':<{width}} {'questions':>10} {'answers':>10} {'text':>8}"]
    for label, p in zip(labels, c.patterns):
        lines.append(f"  {label:<{width}} {p.question:>10} {p.answer:>10} {p.text:>8}")
    lines.append("answer has (row) and question has (column):")
    lines.append("  " + " " * width + "".join(f" {x[:12]:>12}" for x in labels))
    for label, row in zip(labels, c.matrix):
        lines.append(f"  {label:<{width}}" + "".join(f" {v:>12}" for v in row))
    for p in c.patterns:
        for where in ("question", "answer", "text"):
            for e in getattr(p, f"{where}_examples"):
                lines.append(f"  {show(p.pattern)} in {where}, line {e.line}: {e.snippet}")
    for pair in c.pairs:
        for e in pair.examples[:1]:
            lines.append(f"  {show(pair.answer)} in answer, {show(pair.question)} in question, "
                         f"line {e.line}: {e.snippet}")
    for s in c.skipped_lines:
        lines.append(f"  skipped line {s.line}: {s.reason}")
    lines.append(c.summary)
    return encodable("\n".join(lines))




def _tip(examples) -> str:
    return escape("\n".join(f"line {e.line}: {e.snippet}" for e in examples))


def _cell(value: int, examples) -> str:
    return f'<td title="{_tip(examples)}">{value}</td>'


def data_html(c) -> str:
    labels = [escape(repr(p.pattern)) for p in c.patterns]
    counts = "".join(
        f"<tr><th>{label}</th>{_cell(p.question, p.question_examples)}"
        f"{_cell(p.answer, p.answer_examples)}{_cell(p.text, p.text_examples)}</tr>"
        for label, p in zip(labels, c.patterns)
    )
    n = len(c.patterns)
    pair_rows = "".join(
        f"<tr><th>{labels[a]}</th>"
        + "".join(_cell(c.pairs[a * n + b].count, c.pairs[a * n + b].examples) for b in range(n)) + "</tr>"
        for a in range(n)
    )
    examples = [f"line {e.line}: {escape(repr(p.pattern))} in {where}: {escape(e.snippet)}"
                for p in c.patterns for where in ("question", "answer", "text")
                for e in getattr(p, f"{where}_examples")]
    examples += [f"skipped line {s.line}: {escape(s.reason)}" for s in c.skipped_lines]
    details = (f'<details><summary>examples</summary><div class="probe-data-ex">'
               f"{'<br>'.join(examples)}</div></details>") if examples else ""
    return styled(
        f'<div><div class="probe-data-head">{escape(_head(c))}<br>{escape(c.summary)}</div>'
        f'<table class="probe-data"><tr><th>pattern</th><th>questions</th><th>answers</th>'
        f"<th>text</th></tr>{counts}</table>"
        f'<div class="probe-data-head">answer has (row) and question has (column)</div>'
        f'<table class="probe-data"><tr><th></th>{"".join(f"<th>{x}</th>" for x in labels)}</tr>'
        f"{pair_rows}</table>{details}</div>"
    )
