"""Result types: frozen dataclasses that hold numbers, never render on their own.

Every result has ``to_dict()`` / ``from_dict()`` (plain JSON-able data), a plain-text
``__str__`` and a ``_repr_html_`` for notebooks. Rendering lives in :mod:`probe.render`.

Conventions used throughout:

* ``rank`` is 1 + the number of vocabulary entries with a strictly larger logit, so the
  argmax (and anything tied with it) has rank 1.
* ``start``/``end`` are character offsets into ``TokenTrace.text`` (the target of a score,
  the produced text of a generation). The steps' spans tile ``text`` with no gap or overlap.
* Probabilities are those of the raw model distribution, computed in float32.
* A token the model masks (logit -inf: padded or banned vocabulary rows) has probability 0,
  logprob -inf and a rank after every finite one; ``to_dict`` writes that logprob as ``null``
  (saved files stay strict JSON) and ``from_dict`` reads ``null`` back as -inf.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.vocab import Kind, StopReason
from ..core.registry import register
from ..render.case import trace_section
from ..render.strip import trace_html
from ..render.text import trace_text


@dataclass(frozen=True)
class Alternative:
    """One candidate next token: its id, its text on its own, and its probability."""

    id: int
    text: str
    prob: float
    logprob: float

    @classmethod
    def from_dict(cls, d: dict) -> "Alternative":
        return cls(int(d["id"]), str(d["text"]), float(d["prob"]), _logprob_in(d["logprob"]))


def _logprob_out(value: float) -> float | None:
    """A log-probability for JSON: -inf (probability 0) as None; NaN never reaches here."""
    return None if value == -math.inf else value


def null_neg_inf(value):
    """``value`` (plain data from ``asdict``) with every -inf (a masked token's logprob) as None,
    for results that hold traces: strict JSON; their from_dict reads None back as -inf."""
    if isinstance(value, float) and value == -math.inf:
        return None
    if isinstance(value, dict):
        return {k: null_neg_inf(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [null_neg_inf(v) for v in value]
    return value


def _logprob_in(value) -> float:
    return -math.inf if value is None else float(value)


def _step_dict(step: "TokenStep") -> dict:
    d = asdict(step)
    d["logprob"] = _logprob_out(step.logprob)
    for alt in d["top"]:
        alt["logprob"] = _logprob_out(alt["logprob"])
    return d


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
            logprob=_logprob_in(d["logprob"]),
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
    kind: Kind = "score"
    model: str = ""  # which model produced it (LM.name)
    stop_reason: StopReason | None = None  # generate only
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
        d = asdict(self)
        d["steps"] = [_step_dict(s) for s in self.steps]
        return d

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
        return trace_text(self)

    def _repr_html_(self) -> str:
        return trace_html(self)



def _trace_inputs(t: TokenTrace) -> dict:
    if t.kind == "score":
        return {"prompt": t.prompt, "expected": t.text}
    return {"prompt": t.prompt, "force": t.forced_text or None}


register(TokenTrace, default_name="trace", inputs=_trace_inputs, section=trace_section)
