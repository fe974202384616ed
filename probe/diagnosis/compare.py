"""Base vs tuned on the same answer: where does the tuned model fall behind?

    >>> c = probe.compare(base, tuned, "What is the capital of France?", "Paris.")
    >>> c.first_drop, c.largest_drops()

The two traces are aligned by characters: a segment runs between boundaries where both
tokenizations have a token boundary (with one tokenizer, a segment is one token), and its
log-probability under each model is the sum over its tokens.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..engine.trace import TokenTrace, null_neg_inf
from ..engine.scoring import score
from ..core.registry import register
from ..render.case import comparison_section
from ..render.strip import comparison_html
from ..render.text import comparison_text


@dataclass(frozen=True)
class Segment:
    """A stretch of the answer both tokenizations agree on: its text and both logprobs."""

    start: int
    end: int
    text: str
    base_logprob: float
    tuned_logprob: float
    base_steps: tuple[int, ...]  # indices into Comparison.base.steps
    tuned_steps: tuple[int, ...]

    @property
    def delta(self) -> float:
        """tuned - base log-probability (negative: the tuned model likes it less)."""
        return self.tuned_logprob - self.base_logprob

    @classmethod
    def from_dict(cls, d: dict) -> "Segment":
        lp = lambda v: -math.inf if v is None else float(v)  # noqa: E731 - null: a masked token
        return cls(int(d["start"]), int(d["end"]), str(d["text"]), lp(d["base_logprob"]),
                   lp(d["tuned_logprob"]), tuple(d["base_steps"]), tuple(d["tuned_steps"]))


def align(base: TokenTrace, tuned: TokenTrace) -> tuple[Segment, ...]:
    """Segments of the common text between shared token boundaries."""
    if base.text != tuned.text:
        raise ValueError("align() needs two traces of the same text")
    common = sorted({s.end for s in base.steps} & {s.end for s in tuned.steps} | {0, len(base.text)})
    segments = []
    for lo, hi in zip(common, common[1:]):
        b = tuple(s.index for s in base.steps if lo < s.end <= hi)
        t = tuple(s.index for s in tuned.steps if lo < s.end <= hi)
        segments.append(Segment(
            start=lo, end=hi, text=base.text[lo:hi],
            base_logprob=sum(base.steps[i].logprob for i in b),
            tuned_logprob=sum(tuned.steps[i].logprob for i in t),
            base_steps=b, tuned_steps=t,
        ))
    return tuple(segments)


@dataclass(frozen=True)
class Comparison:
    """Both models' traces of one answer, aligned, with the tuned model's drops."""

    target: str
    base: TokenTrace
    tuned: TokenTrace
    segments: tuple[Segment, ...]
    threshold: float  # nats: a drop larger than this counts
    first_drop: int | None  # index of the first segment with delta < -threshold

    @property
    def delta_logprob(self) -> float:
        return self.tuned.total_logprob - self.base.total_logprob

    def largest_drops(self, n: int = 5) -> list[Segment]:
        """The ``n`` segments the tuned model lost most probability on (negative deltas)."""
        return sorted((s for s in self.segments if s.delta < 0), key=lambda s: s.delta)[:n]

    def to_dict(self) -> dict:
        return null_neg_inf(asdict(self))  # strict JSON: a masked token's -inf as null

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(
            target=str(d["target"]),
            base=TokenTrace.from_dict(d["base"]),
            tuned=TokenTrace.from_dict(d["tuned"]),
            segments=tuple(Segment.from_dict(s) for s in d["segments"]),
            threshold=float(d["threshold"]),
            first_drop=None if d.get("first_drop") is None else int(d["first_drop"]),
        )

    def __str__(self) -> str:
        return comparison_text(self)

    def _repr_html_(self) -> str:
        return comparison_html(self)


def compare_traces(base: TokenTrace, tuned: TokenTrace, threshold: float = 1.0) -> Comparison:
    segments = align(base, tuned)
    first = next((i for i, s in enumerate(segments) if s.delta < -threshold), None)
    return Comparison(base.text, base, tuned, segments, float(threshold), first)


def compare(base, tuned, prompt, target: str, *, threshold: float = 1.0, top_k: int = 5,
            base_prompt=None, raw: bool | None = None, system: str | None = None) -> Comparison:
    """Score ``target`` under both models and find where the tuned one falls behind.

    Args:
        base, tuned: LMs (e.g. from :func:`probe.load_pair`).
        prompt: the prompt for both (or only the tuned model when ``base_prompt`` is given).
        target: the answer to compare.
        threshold: a segment whose tuned logprob is more than this many nats below the base's
            is a drop; ``first_drop`` is the first one.
        base_prompt: a different prompt for the base model, used as raw text (a
            continuation such as "The capital of France is").
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0 nats, got {threshold!r}")
    t = score(tuned, prompt, target, top_k=top_k, raw=raw, system=system)
    if base_prompt is None:
        b = score(base, prompt, target, top_k=top_k, raw=raw, system=system)
    else:
        b = score(base, base_prompt, target, top_k=top_k, raw=True)
    return compare_traces(b, t, threshold)


register(Comparison, default_name="comparison",
         inputs=lambda r: {"prompt": r.tuned.prompt, "expected": r.target}, section=comparison_section)
