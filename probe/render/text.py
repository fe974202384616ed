"""Plain-text views of results (what ``str(result)`` prints)."""

from __future__ import annotations


def show(text: str) -> str:
    """A token's text with whitespace made visible, quoted."""
    return repr(text)


def _alts(step, n: int = 3) -> str:
    return ", ".join(f"{show(a.text)} {a.prob:.3f}" for a in step.top[:n])


def trace_text(trace) -> str:
    head = (
        f"TokenTrace[{trace.kind}] {len(trace.steps)} tokens, total logprob "
        f"{trace.total_logprob:.3f} (mean {trace.mean_logprob:.3f}) - {trace.model}"
    )
    lines = [head, f"  {'#':>3} {'token':<18} {'prob':>7} {'rank':>6}  top alternatives"]
    for s in trace.steps:
        flags = ("F" if s.forced else "") + ("S" if s.straddles else "")
        lines.append(
            f"  {s.index:>3} {show(s.text)[:18]:<18} {s.prob:>7.4f} {s.rank:>6}  {_alts(s)}"
            + (f"  [{flags}]" if flags else "")
        )
    if trace.stop_reason:
        lines.append(f"  stopped: {trace.stop_reason}")
    if trace.straddles:
        lines.append("  S: the first token begins inside the prompt (merged across the boundary)")
    return "\n".join(lines)


def divergence_text(d) -> str:
    if not d.diverged:
        return f"No divergence: the model writes all of {show(d.reference)} greedily."
    pref = d.preferred
    return (
        f"Diverges at token {d.index} (char {d.char_offset}) after {show(d.text_before)}: "
        f"reference {show(d.step.text)} has p={d.step.prob:.4f}, rank {d.step.rank}; "
        f"the model prefers {show(pref.text)} (p={pref.prob:.4f}). Top: {_alts(d.step, 5)}"
    )


def trace_divergence_text(d) -> str:
    if not d.diverged:
        return "No divergence: both generations wrote the same text."
    parts = [f"The generations part at char {d.char_offset} after {show(d.text_before)}:"]
    for label, step in (("a", d.step_a), ("b", d.step_b)):
        if step is None:
            parts.append(f"  {label}: ended here")
        else:
            parts.append(f"  {label}: {show(step.text)} p={step.prob:.4f} rank {step.rank}")
    return "\n".join(parts)


def comparison_text(c) -> str:
    lines = [f"Comparison: tuned - base = {c.delta_logprob:+.3f} nats over {show(c.target)}"]
    lines.append(f"  {'segment':<20} {'base lp':>9} {'tuned lp':>9} {'delta':>8}")
    for i, s in enumerate(c.segments):
        mark = "  <- first drop" if i == c.first_drop else ""
        lines.append(f"  {show(s.text)[:20]:<20} {s.base_logprob:>9.3f} {s.tuned_logprob:>9.3f} {s.delta:>+8.3f}{mark}")
    if c.first_drop is None:
        lines.append(f"  no segment drops by more than {c.threshold:g} nats")
    return "\n".join(lines)


def diagnosis_text(d) -> str:
    head = f"Diagnosis{f' [{d.case_id}]' if d.case_id else ''}: {d.verdict.upper()} - {d.explanation}"
    lines = [head, f"  check: {d.check}"]
    for r in d.runs:
        force = f" (forced {show(r.force)})" if r.force else ""
        lines.append(f"  {'PASS' if r.passed else 'fail'} {r.name:<13}{force}: {show(r.text)[:70]}")
        lines.append(f"       {r.reason}")
    for model in ("tuned", "base"):
        p = d.p_expected(model)
        if p is not None:
            div = d.divergence(model)
            where = (f"leaves it at {show(div.step.text)} (rank {div.rank}), preferring {show(div.preferred.text)}"
                     if div.diverged else "would write it greedily")
            lines.append(f"  {model}: P(expected)={p:.3g}, first-token rank {d.rank_expected(model)}; {where}")
    return "\n".join(lines)
