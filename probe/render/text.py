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
