"""Where does an answer go wrong?

    >>> d = probe.first_divergence(lm, "What is the capital of Japan?", reference="Tokyo.")
    >>> d.index, d.text_before, d.preferred.text, d.prob

    >>> q = "What is the capital of Japan?"
    >>> p = probe.first_divergence(probe.generate(base, q), probe.generate(tuned, q))  # where they part
    >>> p.char_offset, p.step_a, p.step_b                       # the first differing character
"""

from __future__ import annotations

from .results import Divergence, TokenTrace, TraceDivergence


def divergence_from_trace(trace: TokenTrace) -> Divergence:
    """The first divergence within a teacher-forced (scored) reference trace."""
    reference = trace.text
    first = next((s for s in trace.steps if s.rank > 1), None)
    if first is None:
        return Divergence(False, reference, reference, None, None, None, trace)
    return Divergence(
        diverged=True,
        reference=reference,
        text_before=reference[: first.start],
        index=first.index,
        char_offset=first.start,
        step=first,
        trace=trace,
    )


def _covering(trace: TokenTrace, offset: int) -> int | None:
    """Index of the step whose span holds character ``offset`` (None past the end)."""
    for step in trace.steps:
        if step.start <= offset < step.end:
            return step.index
    return None


def _trace_divergence(a: TokenTrace, b: TokenTrace) -> TraceDivergence:
    common = 0
    for x, y in zip(a.text, b.text):
        if x != y:
            break
        common += 1
    if common == len(a.text) == len(b.text):
        return TraceDivergence(False, a.text, None, None, None, a, b)
    return TraceDivergence(
        diverged=True,
        text_before=a.text[:common],
        char_offset=common,
        index_a=_covering(a, common),
        index_b=_covering(b, common),
        a=a,
        b=b,
    )


def first_divergence(
    lm_or_trace,
    prompt_or_trace,
    reference: str | None = None,
    *,
    top_k: int = 5,
    raw: bool | None = None,
    system: str | None = None,
):
    """The first token where a model leaves a reference, or where two generations part.

    ``first_divergence(lm, prompt, reference)`` teacher-forces ``reference`` and returns a
    :class:`Divergence` at the first reference token that is not the model's top choice
    (rank > 1): its probability and rank, what the model preferred, the top-k there and the
    text before it. ``diverged`` is False when the model would write the whole reference
    greedily.

    ``first_divergence(trace_a, trace_b)`` compares two TokenTraces character by character
    (so different tokenizers still compare) and returns a :class:`TraceDivergence`.
    """
    if isinstance(lm_or_trace, TokenTrace):
        if not isinstance(prompt_or_trace, TokenTrace) or reference is not None:
            raise TypeError("first_divergence(trace_a, trace_b) takes two TokenTraces")
        return _trace_divergence(lm_or_trace, prompt_or_trace)
    if reference is None:
        raise TypeError("first_divergence(lm, prompt, reference) needs the reference answer")
    from .scoring import score  # only here: the trace functions above need no model

    trace = score(lm_or_trace, prompt_or_trace, reference, top_k=top_k, raw=raw, system=system)
    return divergence_from_trace(trace)
