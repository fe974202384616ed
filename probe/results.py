"""Result types: frozen dataclasses that hold numbers, never render on their own.

Every result has ``to_dict()`` / ``from_dict()`` (plain JSON-able data), a plain-text
``__str__`` and a ``_repr_html_`` for notebooks. Rendering lives in :mod:`probe.render`.

Conventions used throughout:

* ``rank`` is 1 + the number of vocabulary entries with a strictly larger logit, so the
  argmax (and anything tied with it) has rank 1.
* ``start``/``end`` are character offsets into ``TokenTrace.text`` (the target of a score,
  the produced text of a generation). The steps' spans tile ``text`` with no gap or overlap.
* Probabilities are those of the raw model distribution, computed in float32.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .kinds import StopReason


@dataclass(frozen=True)
class Alternative:
    """One candidate next token: its id, its text on its own, and its probability."""

    id: int
    text: str
    prob: float
    logprob: float

    @classmethod
    def from_dict(cls, d: dict) -> "Alternative":
        return cls(int(d["id"]), str(d["text"]), float(d["prob"]), float(d["logprob"]))


@dataclass(frozen=True)
class TokenStep:
    """One token of an answer, with what the model thought of it at that point.

    ``text`` is the exact text the token covers in ``TokenTrace.text`` (``text[start:end]``),
    with two exceptions: a token that ``straddles`` the prompt/target boundary begins inside
    the prompt, so its ``text`` also holds the prompt characters it covers (``start`` is 0);
    a special token the model generates (EOS) has its name as ``text`` and a zero-width span.
    A token holding only part of a multi-byte character has empty text; the character goes to
    the token that completes it.
    """

    index: int  # position among the trace's steps, 0-based
    id: int  # token id as the model saw it
    text: str
    start: int  # char span in TokenTrace.text
    end: int
    logprob: float  # log P(token | everything before it), float32 softmax
    prob: float
    rank: int  # 1 = the model's top choice
    entropy: float  # of the next-token distribution at this point, in nats
    top: tuple[Alternative, ...]  # the top-k alternatives, most likely first
    forced: bool = False  # fed by the caller (a forced prefix), not chosen by the model
    straddles: bool = False  # begins inside the prompt (tokenizer merged across the boundary)
    watch: dict[str, float] = field(default_factory=dict)  # P(watched string next) here
    sampled_prob: float | None = None  # prob after temperature/top-p, when sampling

    @property
    def preferred(self) -> Alternative | None:
        """The model's top choice at this point."""
        return self.top[0] if self.top else None

    @classmethod
    def from_dict(cls, d: dict) -> "TokenStep":
        return cls(
            index=int(d["index"]),
            id=int(d["id"]),
            text=str(d["text"]),
            start=int(d["start"]),
            end=int(d["end"]),
            logprob=float(d["logprob"]),
            prob=float(d["prob"]),
            rank=int(d["rank"]),
            entropy=float(d["entropy"]),
            top=tuple(Alternative.from_dict(a) for a in d.get("top", ())),
            forced=bool(d.get("forced", False)),
            straddles=bool(d.get("straddles", False)),
            watch={str(k): float(v) for k, v in d.get("watch", {}).items()},
            sampled_prob=None if d.get("sampled_prob") is None else float(d["sampled_prob"]),
        )


@dataclass(frozen=True)
class TokenTrace:
    """Per-token statistics of one answer: a scored target or a generated continuation."""

    prompt: str  # the exact text the model was conditioned on (chat template applied)
    text: str  # the target (kind="score") or everything produced (kind="generate")
    steps: tuple[TokenStep, ...]
    kind: str = "score"  # "score" | "generate"
    model: str = ""  # which model produced it (LM.name)
    stop_reason: StopReason | None = None  # generate only: "eos" | "stop" | "length"
    settings: dict[str, Any] = field(default_factory=dict)  # top_k, sampling, watch, ...

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self):
        return iter(self.steps)

    def __getitem__(self, i):
        return self.steps[i]

    @property
    def ids(self) -> list[int]:
        return [s.id for s in self.steps]

    @property
    def total_logprob(self) -> float:
        return float(sum(s.logprob for s in self.steps))

    @property
    def mean_logprob(self) -> float:
        return self.total_logprob / len(self.steps) if self.steps else math.nan

    @property
    def straddles(self) -> bool:
        """True when the first token begins inside the prompt (see TokenStep.straddles)."""
        return any(s.straddles for s in self.steps)

    @property
    def forced_text(self) -> str:
        return "".join(self.text[s.start : s.end] for s in self.steps if s.forced)

    @property
    def free_text(self) -> str:
        """What the model produced on its own (after any forced prefix)."""
        return "".join(self.text[s.start : s.end] for s in self.steps if not s.forced)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TokenTrace":
        return cls(
            prompt=str(d["prompt"]),
            text=str(d["text"]),
            steps=tuple(TokenStep.from_dict(s) for s in d["steps"]),
            kind=str(d.get("kind", "score")),
            model=str(d.get("model", "")),
            stop_reason=d.get("stop_reason"),
            settings=dict(d.get("settings", {})),
        )

    def __str__(self) -> str:
        from .render.text import trace_text

        return trace_text(self)

    def _repr_html_(self) -> str:
        from .render.strip import trace_html

        return trace_html(self)


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
        return asdict(self)

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
        from .render.text import divergence_text

        return divergence_text(self)

    def _repr_html_(self) -> str:
        from .render.strip import divergence_html

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
        return asdict(self)

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
        from .render.text import trace_divergence_text

        return trace_divergence_text(self)

    def _repr_html_(self) -> str:
        from .render.strip import trace_divergence_html

        return trace_divergence_html(self)
