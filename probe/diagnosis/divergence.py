"""Where does an answer go wrong?

    >>> d = probe.first_divergence(lm, "What is the capital of Japan?", reference="Tokyo.")
    >>> d.index, d.text_before, d.preferred.text, d.prob

    >>> q = "What is the capital of Japan?"
    >>> p = probe.first_divergence(probe.generate(base, q), probe.generate(tuned, q))  # where they part
    >>> p.char_offset, p.step_a, p.step_b                       # the first differing character
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..engine.trace import Alternative, TokenStep, TokenTrace, null_neg_inf
from ..core.registry import Headline, Parting, register
from ..render.case import divergence_section, trace_divergence_section
from ..engine.scoring import score
from ..render.strip import divergence_html, trace_divergence_html
from ..render.text import divergence_text, trace_divergence_text



@dataclass(frozen=True)
class Divergence:
    """Where a model first leaves a reference answer (teacher-forced, greedy sense).

    ``diverged`` is False when the model would write the whole reference greedily; the
    other fields are then None (``text_before`` is the whole reference).
    """

    diverged: bool
    reference: str
    text_before: str  # reference[:char_offset]: what the model agrees with
    index: int | None  # index of the first reference token with rank > 1
    char_offset: int | None  # where that token starts in the reference
    step: TokenStep | None  # that reference token: prob, rank, top-k there
    trace: TokenTrace  # the whole teacher-forced reference

    @property
    def prob(self) -> float | None:
        return self.step.prob if self.step else None

    @property
    def rank(self) -> int | None:
        return self.step.rank if self.step else None

    @property
    def preferred(self) -> Alternative | None:
        """What the model wanted to write instead of the reference token."""
        return self.step.preferred if self.step else None

    def to_dict(self) -> dict:
        return null_neg_inf(asdict(self))  # strict JSON: a masked token's -inf as null

    @classmethod
    def from_dict(cls, d: dict) -> "Divergence":
        return cls(
            diverged=bool(d["diverged"]),
            reference=str(d["reference"]),
            text_before=str(d["text_before"]),
            index=None if d.get("index") is None else int(d["index"]),
            char_offset=None if d.get("char_offset") is None else int(d["char_offset"]),
            step=None if d.get("step") is None else TokenStep.from_dict(d["step"]),
            trace=TokenTrace.from_dict(d["trace"]),
        )

    def __str__(self) -> str:
        return divergence_text(self)

    def _repr_html_(self) -> str:
        return divergence_html(self)


@dataclass(frozen=True)
class TraceDivergence:
    """Where two generations (e.g. base vs tuned) part, compared character by character.

    Works across tokenizers: the texts are compared, then each side's token covering the
    first differing character is reported with its own probability, rank and top-k.
    """

    diverged: bool
    text_before: str  # the common prefix of both texts
    char_offset: int | None  # first differing character (None: identical texts)
    index_a: int | None  # step of ``a`` covering that character (None: ``a`` ended there)
    index_b: int | None
    a: TokenTrace
    b: TokenTrace

    @property
    def step_a(self) -> TokenStep | None:
        return None if self.index_a is None else self.a.steps[self.index_a]

    @property
    def step_b(self) -> TokenStep | None:
        return None if self.index_b is None else self.b.steps[self.index_b]

    def to_dict(self) -> dict:
        return null_neg_inf(asdict(self))  # strict JSON: a masked token's -inf as null

    @classmethod
    def from_dict(cls, d: dict) -> "TraceDivergence":
        opt = lambda k: None if d.get(k) is None else int(d[k])  # noqa: E731
        return cls(
            diverged=bool(d["diverged"]),
            text_before=str(d["text_before"]),
            char_offset=opt("char_offset"),
            index_a=opt("index_a"),
            index_b=opt("index_b"),
            a=TokenTrace.from_dict(d["a"]),
            b=TokenTrace.from_dict(d["b"]),
        )

    def __str__(self) -> str:
        return trace_divergence_text(self)

    def _repr_html_(self) -> str:
        return trace_divergence_html(self)



def _leaves_expected(div: Divergence) -> Parting:
    """A summary row's "where": the expected token the model leaves, and what it preferred."""
    if not div.diverged:
        return Parting("expected", False)
    preferred = div.preferred
    return Parting("expected", True, div.step.text, None if preferred is None else preferred.text)


register(Divergence, default_name="divergence",
         inputs=lambda r: {"prompt": r.trace.prompt, "expected": r.reference},
         section=divergence_section, headline=lambda r: Headline(where=_leaves_expected(r)))
register(TraceDivergence, default_name="divergence", section=trace_divergence_section)

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
    trace = score(lm_or_trace, prompt_or_trace, reference, top_k=top_k, raw=raw, system=system)
    return divergence_from_trace(trace)
