"""Plain-text views of results (what ``str(result)`` prints). Pure: no computation here.

Sentences that the HTML views say too come from :mod:`probe.render.phrases`; table rows of
a diagnosis come from its :class:`probe.core.registry.Headline`.
"""

from __future__ import annotations

from ..core.registry import type_of
from .safe import encodable
from .phrases import (as_text, p_text, clip, comparison_phrase, divergence_phrase, expected_phrase, headline_cells,
    parting_phrase, show, trace_facts)


def _alts(step, n: int = 3) -> str:
    return ", ".join(f"{show(a.text)} {a.prob:.3f}" for a in step.top[:n])


def trace_text(trace) -> str:
    head = f"TokenTrace[{trace.kind}] {as_text(trace_facts(trace))} - {trace.model}"
    lines = [head, f"  {'#':>3} {'token':<18} {'prob':>7} {'rank':>6}  top alternatives"]
    for s in trace.steps:
        flags = ("F" if s.forced else "") + ("S" if s.straddles else "")
        lines.append(
            f"  {s.index:>3} {show(s.text)[:18]:<18} {p_text(s.prob):>7} {s.rank:>6}  {_alts(s)}"
            + (f"  [{flags}]" if flags else "")
        )
    if trace.stop_reason:
        lines.append(f"  stopped: {trace.stop_reason}")
    if trace.straddles:
        lines.append("  S: the first token begins inside the prompt (merged across the boundary)")
    return encodable("\n".join(lines))


def divergence_text(d) -> str:
    text = as_text(divergence_phrase(d))
    return text if not d.diverged else f"{text} Top: {_alts(d.step, 5)}"


def trace_divergence_text(d) -> str:
    parts = [as_text(parting_phrase(d))]
    if not d.diverged:
        return parts[0]
    for label, step in (("a", d.step_a), ("b", d.step_b)):
        if step is None:
            parts.append(f"  {label}: ended here")
        else:
            parts.append(f"  {label}: {show(step.text)} p={p_text(step.prob)} rank {step.rank}")
    return "\n".join(parts)


def comparison_text(c) -> str:
    lines = [f"Comparison: {as_text(comparison_phrase(c))}"]
    lines.append(f"  {'segment':<20} {'base lp':>9} {'tuned lp':>9} {'delta':>8}")
    for i, s in enumerate(c.segments):
        mark = "  <- first drop" if i == c.first_drop else ""
        lines.append(f"  {show(s.text)[:20]:<20} {s.base_logprob:>9.3f} {s.tuned_logprob:>9.3f} {s.delta:>+8.3f}{mark}")
    if c.first_drop is None:
        lines.append(f"  no segment drops by more than {c.threshold:g} nats")
    return "\n".join(lines)


RUN_LABELS = {"tuned": "tuned", "tuned_forced": "tuned forced", "base": "base",
              "base_forced": "base forced", "reference": "reference"}


def _num(p: float) -> str:
    return f"{p:.2g}"


def run_cell(run) -> str:
    """``fail 0/10 p=1.4e-06 r57``: greedy check, pass rate, P(expected) and rank where the
    run answers (the numbers a verdict rests on)."""
    parts = ["PASS" if run.passed else "fail"]
    if run.rate is not None:
        parts.append(str(run.rate))
    if run.p_expected is not None:
        parts.append(f"p={_num(run.p_expected)} r{run.rank_expected}")
    return " ".join(parts)


def run_evidence(run) -> str:
    """One line: the cell, the 95% interval, and where the run leaves the expected answer."""
    line = run_cell(run)
    if run.rate is not None:
        line += f" ({100 * run.rate.low:.0f}-{100 * run.rate.high:.0f}%)"
    if run.p_expected is not None:
        step = run.divergent_step
        line += ("; writes expected greedily" if step is None else
                 f"; leaves it at {show(step.text)} (rank {step.rank}), preferring {show(step.top[0].text)}"
                 if step.top else f"; leaves it at {show(step.text)} (rank {step.rank})")
    return line


def diagnosis_text(d) -> str:
    head = f"Diagnosis{f' [{d.case_id}]' if d.case_id else ''}: {d.verdict.upper()} - {d.explanation}"
    lines = [head, f"  {d.summary}", f"  check: {d.check}"]
    if d.labels:
        lines.append(f"  labels: {', '.join(d.labels)}")
    if d.samples:
        lines.append(f"  samples: {d.samples} per run, temperature {d.temperature:g}, seed {d.seed}")
    for r in d.runs:
        force = f" (forced {show(r.force)})" if r.force else ""
        lines.append(f"  {'PASS' if r.passed else 'fail'} {r.name:<13}{force}: {show(r.text)[:70]}")
        lines.append(f"       {r.reason}")
        lines.append(f"       {run_evidence(r)}")
    for model in ("tuned", "base"):
        phrase = expected_phrase(d, model)
        if phrase is not None:
            lines.append(f"  {as_text(phrase)}")
    gain = d.expected_gain()
    if gain is not None:
        lines.append(f"  log P(expected) tuned - base: {gain:+.2f} nats")
    if d.sweep is not None:
        lines.append(f"  sweep: {show(d.sweep.watch)} stays greedy for "
                     f"{sum(r.watch_is_greedy for r in d.sweep.rows)}/{len(d.sweep.rows)} swept values")
    return encodable("\n".join(lines))


RUN_ORDER = ("tuned", "tuned_forced", "base", "base_forced")


def verdict_rows(results) -> list[list[str]]:
    """One row per ``diagnose_many`` result (a Diagnosis or a FailedCase)."""
    rows = []
    for r in results:
        if r.verdict == "error":  # a FailedCase: the case could not be read or run
            rows.append([r.id, "", "ERROR", clip(str(r), 60)] + [""] * (len(VERDICT_HEADER) - 4))
            continue
        where, _, _ = headline_cells(type_of(r).headline_of(r))
        runs = [r.run(name) for name in RUN_ORDER]
        rows.append([r.case_id or "", getattr(r, "adapter", "") or "", r.verdict,
                     r.summary.split(": ", 1)[-1], ", ".join(r.labels),
                     *("" if run is None else run_cell(run) for run in runs), clip(where, 40)])
    return rows


VERDICT_HEADER = ["case", "adapter", "verdict", "rests on", "labels", "tuned", "tuned forced", "base",
                  "base forced", "first divergent token (tuned)"]


def verdict_table(results) -> str:
    """The verdict table: each run as ``PASS|fail [k/n] [p=P(expected) rRANK]``."""
    rows = [VERDICT_HEADER] + verdict_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(VERDICT_HEADER))]
    line = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    return encodable("\n".join([line(rows[0]), line(["-" * w for w in widths])] + [line(r) for r in rows[1:]]
                                + ["", RUN_KEY]))


RUN_KEY = ("each run: PASS|fail = its greedy answer checked; k/n = samples right; p = P(expected) where "
           "that run answers; rN = rank of its first token there")


def case_text(case) -> str:
    head = f"Case {case.id}" + (f" [{case.title}]" if case.title and case.title != case.id else "")
    lines = [head + (f": {case.verdict.upper()}" if case.verdict else "")]
    if case.labels:
        lines.append(f"  labels: {', '.join(case.labels)}")
    if case.prompt is not None:
        prompt = case.prompt if isinstance(case.prompt, str) else " / ".join(
            f"{m.get('role', '?')}: {m.get('content', '')}" for m in case.prompt)
        lines.append(f"  prompt: {show(clip(prompt, 100))}")
    for key in ("expected", "force", "base_prompt", "check"):
        value = getattr(case, key)
        if value is not None:
            lines.append(f"  {key}: {show(clip(value, 80))}")
    if case.tags:
        lines.append(f"  tags: {', '.join(case.tags)}")
    if case.note:
        lines.append(f"  note: {case.note}")
    for m in case.models:
        adapter = f" + {m.adapter}" if m.adapter else ""
        lines.append(f"  {m.role}: {m.name}{adapter} [{m.dtype or '?'}, {m.fingerprint or 'no fingerprint'}]")
    lines.append(f"  results: {', '.join(f'{k} ({type_of(v).name})' for k, v in case.results.items())}")
    lines.append(f"  made {case.created} with " + ", ".join(f"{k} {v}" for k, v in case.versions.items()))
    return encodable("\n".join(lines))
