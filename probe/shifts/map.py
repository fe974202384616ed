"""What did fine-tuning change over a whole set of prompts? Token shift, KL, promoted tokens.

    >>> s = probe.shift(base, tuned, ["Describe the sea.", "Name a fruit."], max_new_tokens=48)
    >>> s.shifted_ratio, s.kl_by_position()[:5]
    >>> s.promoted[:5]          # the tokens tuned puts far above base most often
    >>> s.where(" Beijing")     # (prompt, position, gain) wherever it is promoted

For each prompt the tuned model's answer (greedy, a given answer, or the case's expected
answer) is scored under both models in one forward per model (one forward in all for a LoRA
pair). At each answer position: the base model's rank of the tuned token and its class
(URIAL, Lin et al. 2023: rank 1 *unshifted*, up to ``marginal`` *marginal*, above *shifted*),
KL(tuned || base) over the whole vocabulary, both models' top-k, and the tokens whose
log-probability tuned raised (promoted) or lowered (demoted) most there.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Iterable, Sequence

from ..core.engines import as_engine
from ..core.numbers import json_numbers
from ..core.progress import progress as progress_bar
from ..core.registry import register
from ..engine.trace import Alternative
from ..engine.scoring import _batches, _vocab_size, check_top_k
from ..engine.support import supports
from .answers import _answers, _score_batch
from ..diagnosis.result import _one_batch
from ..diagnosis.run import CaseError, CaseSpec
from ..render.shift import kl_figure, shift_html, shift_text

CLASSES = ("unshifted", "marginal", "shifted")


@dataclass(frozen=True)
class Gain:
    """A token whose log-probability tuned moved at one position."""

    id: int
    text: str
    gain: float  # log p_tuned - log p_base (nats; negative for a demoted token)
    tuned_logprob: float
    base_logprob: float

    @classmethod
    def from_dict(cls, d: dict, sign: float = 1.0) -> "Gain":
        """``sign``: +1 for a promoted token, -1 for a demoted one (files before non-finite
        numbers were saved by name wrote an infinite gain as null)."""
        gain = sign * math.inf if d["gain"] is None else float(d["gain"])
        lp = lambda v: -math.inf if v is None else float(v)  # noqa: E731 - null: a masked token
        return cls(int(d["id"]), str(d["text"]), gain, lp(d["tuned_logprob"]), lp(d["base_logprob"]))


@dataclass(frozen=True)
class ShiftPosition:
    """One answer token scored under both models."""

    index: int  # position in the answer, 0-based
    id: int
    text: str
    tuned_logprob: float
    base_logprob: float
    tuned_rank: int
    base_rank: int  # the base model's rank of the tuned answer's token (1 = its top choice)
    kind: str  # "unshifted" | "marginal" | "shifted" (by base_rank)
    kl: float  # KL(tuned || base) over the full vocabulary, nats
    tuned_top: tuple[Alternative, ...]
    base_top: tuple[Alternative, ...]
    promoted: tuple[Gain, ...]  # the largest gains here, largest first
    demoted: tuple[Gain, ...]  # the largest losses here, largest loss first

    @classmethod
    def from_dict(cls, d: dict) -> "ShiftPosition":
        alts = lambda k: tuple(Alternative.from_dict(a) for a in d.get(k, ()))  # noqa: E731
        gains = lambda k: tuple(Gain.from_dict(g, 1.0 if k == "promoted" else -1.0)  # noqa: E731
                                for g in d.get(k, ()))
        lp = lambda v: -math.inf if v is None else float(v)  # noqa: E731 - null: a masked token
        return cls(int(d["index"]), int(d["id"]), str(d["text"]), lp(d["tuned_logprob"]),
                   lp(d["base_logprob"]), int(d["tuned_rank"]), int(d["base_rank"]), str(d["kind"]),
                   math.inf if d["kl"] is None else float(d["kl"]), alts("tuned_top"), alts("base_top"), gains("promoted"), gains("demoted"))


@dataclass(frozen=True)
class PromptShift:
    """One prompt's answer, position by position."""

    prompt: Any  # str or list of messages, as given
    rendered: str  # the exact text both models were conditioned on
    answer: str
    source: str  # "greedy" | "given" | "expected"
    positions: tuple[ShiftPosition, ...]
    case_id: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def kl(self) -> float:
        """Sum of KL(tuned || base) over the answer's positions."""
        return float(sum(p.kl for p in self.positions))

    @property
    def shifted(self) -> int:
        return sum(p.kind == "shifted" for p in self.positions)

    @classmethod
    def from_dict(cls, d: dict) -> "PromptShift":
        return cls(d["prompt"], str(d["rendered"]), str(d["answer"]), str(d["source"]),
                   tuple(ShiftPosition.from_dict(p) for p in d["positions"]), d.get("case_id"),
                   tuple(d.get("tags", ())))


@dataclass(frozen=True)
class TokenShift:
    """A token promoted (or demoted) across the prompt set: how often, by how much, where."""

    id: int
    text: str
    count: int  # positions where it is among the top promoted (demoted) tokens
    n_prompts: int  # distinct prompts among those
    mean_gain: float  # mean log p_tuned - log p_base there (nats)
    mean_tuned_prob: float
    mean_base_prob: float
    at: tuple[tuple[int, int], ...]  # (prompt index, position index), largest |gain| first


@dataclass(frozen=True)
class Shift:
    """base vs tuned over a prompt set. ``promoted``/``demoted`` are derived from the positions."""

    prompts: tuple[PromptShift, ...]
    marginal: int = 3  # base rank 1: unshifted, 2..marginal: marginal, above: shifted
    models: dict[str, str] = field(default_factory=dict)  # "base"/"tuned" -> LM name
    adapter: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def positions(self) -> list[ShiftPosition]:
        return [p for ps in self.prompts for p in ps.positions]

    @property
    def n_positions(self) -> int:
        return sum(len(ps.positions) for ps in self.prompts)

    @property
    def class_counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.positions)
        return {c: counts.get(c, 0) for c in CLASSES}

    @property
    def shifted_ratio(self) -> float:
        """Share of answer positions whose token the base ranks above ``marginal``."""
        n = self.n_positions
        return self.class_counts["shifted"] / n if n else math.nan

    @property
    def mean_kl(self) -> float:
        n = self.n_positions
        return sum(p.kl for p in self.positions) / n if n else math.nan

    def kl_by_position(self) -> list[tuple[float, int]]:
        """(mean KL(tuned || base), number of answers that long) at each answer position."""
        sums: dict[int, list[float]] = defaultdict(list)
        for ps in self.prompts:
            for p in ps.positions:
                sums[p.index].append(p.kl)
        return [(statistics.fmean(sums[j]), len(sums[j])) for j in range(len(sums))]

    def classes_by_position(self) -> list[dict[str, int]]:
        """Counts of each class at each answer position."""
        n = max((len(ps.positions) for ps in self.prompts), default=0)
        out = [{c: 0 for c in CLASSES} for _ in range(n)]
        for ps in self.prompts:
            for p in ps.positions:
                out[p.index][p.kind] += 1
        return out

    def _tally(self, which: str) -> tuple[TokenShift, ...]:
        hits: dict[int, list] = defaultdict(list)
        text: dict[int, str] = {}
        for i, ps in enumerate(self.prompts):
            for p in ps.positions:
                for g in getattr(p, which):
                    hits[g.id].append((i, p.index, g))
                    text[g.id] = g.text
        out = []
        for tid, got in hits.items():
            got.sort(key=lambda h: -abs(h[2].gain))
            gains = [h[2] for h in got]
            out.append(TokenShift(
                id=tid, text=text[tid], count=len(got), n_prompts=len({h[0] for h in got}),
                mean_gain=statistics.fmean(g.gain for g in gains),
                mean_tuned_prob=statistics.fmean(math.exp(g.tuned_logprob) for g in gains),
                mean_base_prob=statistics.fmean(math.exp(g.base_logprob) for g in gains),
                at=tuple((h[0], h[1]) for h in got)))
        out.sort(key=lambda t: (-t.count, -abs(t.mean_gain), t.id))
        return tuple(out)

    @property
    def promoted(self) -> tuple[TokenShift, ...]:
        """Tokens tuned puts far above base, most often first (then by mean gain)."""
        return self._tally("promoted")

    @property
    def demoted(self) -> tuple[TokenShift, ...]:
        """Tokens tuned puts far below base, most often first."""
        return self._tally("demoted")

    def token(self, token: int | str, which: str = "promoted") -> TokenShift | None:
        """The promoted (or demoted) entry of a token, by id or exact text (None: never)."""
        for t in (self.promoted if which == "promoted" else self.demoted):
            if t.id == token or t.text == token:
                return t
        return None

    def where(self, token: int | str, which: str = "promoted") -> list[tuple[int, int, float]]:
        """(prompt index, position index, gain) wherever ``token`` is promoted, largest gain first."""
        t = self.token(token, which)
        if t is None:
            return []
        out = []
        for i, j in t.at:
            g = next(g for g in getattr(self.prompts[i].positions[j], which) if g.id == t.id)
            out.append((i, j, g.gain))
        return out

    def figure(self):
        """Plotly: mean KL by position and the classes by position."""
        return kl_figure(self)

    def to_dict(self) -> dict:
        """Plain JSON-able data, strict JSON: a non-finite number (the logprob -inf of a masked
        token, the KL +inf where base masks what tuned gives, a gain of +-inf) is written by
        name, "inf", "-inf" or "nan" (files before wrote null, which still reads: -inf for a
        logprob, +inf for a KL, the sign of its list for a gain)."""
        return json_numbers(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Shift":
        return cls(tuple(PromptShift.from_dict(p) for p in d["prompts"]), int(d.get("marginal", 3)),
                   {str(k): str(v) for k, v in d.get("models", {}).items()}, d.get("adapter"),
                   dict(d.get("settings", {})))

    def __str__(self) -> str:
        return shift_text(self)

    def _repr_html_(self) -> str:
        return shift_html(self)


register(Shift, default_name="shift")


# --- computing it ------------------------------------------------------------------------


def classify(rank: int, marginal: int) -> str:
    return "unshifted" if rank == 1 else ("marginal" if rank <= marginal else "shifted")


def _inputs(prompts) -> list[tuple[Any, str | None, str | None, tuple[str, ...]]]:
    """(prompt, expected, case id, tags) per item: a str, a list of messages or a CaseSpec."""
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, CaseError):
            raise ValueError(f"prompt {i}: {p}")
        if isinstance(p, CaseSpec):
            out.append((p.prompt, p.expected, p.id, tuple(p.tags)))
        elif isinstance(p, str) or (isinstance(p, Sequence) and all(isinstance(m, dict) for m in p)):
            out.append((p, None, None, ()))
        else:
            raise TypeError(f"prompt {i} must be a str, a list of messages or a CaseSpec, "
                        f"got {type(p).__name__}")
    if not out:
        raise ValueError("no prompts to compare the models on")
    return out


def _alts(lm, pairs) -> tuple[Alternative, ...]:
    return tuple(Alternative(int(i), lm.token_text(int(i)), math.exp(lp), lp) for i, lp in pairs)


def _gains(lm, rows) -> tuple[Gain, ...]:
    return tuple(Gain(int(i), lm.token_text(int(i)), g, a, b) for i, g, a, b in rows)


def _check_pair(base, tuned) -> None:
    vb, vt = _vocab_size(base), _vocab_size(tuned)
    if vb != vt:
        raise ValueError(f"base and tuned have different vocabularies ({vb} vs {vt} tokens): a token "
                         "shift compares the two models' distributions position by position")
    if base.tokenizer is not tuned.tokenizer and base.tokenizer.get_vocab() != tuned.tokenizer.get_vocab():
        raise ValueError("base and tuned use different tokenizers: a token shift needs the same one")


def shift(base, tuned, prompts: Iterable, *, answers: str | Sequence[str] = "greedy",
          max_new_tokens: int = 48, marginal: int = 3, top_k: int = 5, promote_k: int = 5,
          min_gain: float = 1.0, min_prob: float = 0.01, batch_size: int = 16,
          system: str | None = None, progress: bool = False, engine=None) -> Shift:
    """Where and how much fine-tuning moved the answer distribution over ``prompts``.

    Args:
        base, tuned: LMs sharing a tokenizer (``probe.load_pair``; a LoRA pair runs both
            models in one batch).
        prompts: texts, message lists or ``CaseSpec`` s (``probe.read_cases``).
        answers: "greedy" (the tuned model's own greedy answer, ``max_new_tokens`` long),
            "expected" (each CaseSpec's expected answer) or one answer string per prompt.
        marginal: base rank 1 is "unshifted", 2..marginal "marginal", above "shifted".
        top_k: both models' alternatives kept per position.
        promote_k: promoted and demoted tokens kept per position.
        min_gain: a token is promoted at a position when log p_tuned - log p_base >= min_gain
            nats there (demoted: <= -min_gain) ...
        min_prob: ... and the tuned (demoted: base) model gives it at least ``min_prob``.
        batch_size: prompts per batch (generated together, then scored within the logits budget).
        system: a system message for every prompt.
        progress: a progress bar over the prompts.
        engine: where the batches run: None (here) or ``probe.ray_engine(...)``; same results.

    Both models see the same ids: the prompt in the tuned model's format, then the answer.
    """
    top_k, promote_k = check_top_k(top_k), check_top_k(promote_k)
    if not isinstance(marginal, int) or isinstance(marginal, bool) or marginal < 1:
        raise ValueError(f"marginal must be a positive int (the last base rank counted marginal), got {marginal!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not (isinstance(min_gain, (int, float)) and min_gain >= 0):
        raise ValueError(f"min_gain must be a number >= 0 (nats), got {min_gain!r}")
    if not (isinstance(min_prob, (int, float)) and 0 <= min_prob <= 1):
        raise ValueError(f"min_prob must be in [0, 1], got {min_prob!r}")
    _check_pair(base, tuned)
    items = _inputs(list(prompts))
    settings = {"answers": answers if isinstance(answers, str) else "given", "max_new_tokens": max_new_tokens,
                "top_k": top_k, "promote_k": promote_k, "min_gain": float(min_gain),
                "min_prob": float(min_prob)}
    if not isinstance(answers, str):
        if not isinstance(answers, Sequence):
            raise TypeError("answers must be 'greedy', 'expected' or a list of answer strings")
        if len(answers) != len(items):
            raise ValueError(f"got {len(answers)} answers for {len(items)} prompts")
    elif answers not in ("greedy", "expected"):
        raise TypeError("answers must be 'greedy', 'expected' or a list of answer strings")
    # batch_size prompts at a time, in input order, on every engine: the same batches, the same bits
    batches = [(lo, items[lo:lo + batch_size], answers if isinstance(answers, str) else list(answers[lo:lo + batch_size]),
                tuned.active_adapter) for lo in range(0, len(items), batch_size)]
    fn = partial(_shift_batch, max_new_tokens=max_new_tokens, batch_size=batch_size, system=system,
                 settings=settings, marginal=marginal)
    with progress_bar(len(items), progress, "shift", "prompt") as bar:
        done = as_engine(engine).map_batches(fn, batches, pair=(base, tuned),
                                             on_batch=lambda b, r: bar.update(len(r)))
    return Shift(prompts=tuple(p for got in done for p in got), marginal=marginal,
                 models={"base": base.name, "tuned": tuned.name}, adapter=tuned.active_adapter, settings=settings)


def _shift_batch(base, tuned, batch, *, max_new_tokens, batch_size, system, settings, marginal) -> list[PromptShift]:
    """One batch ``(first prompt's index, items, answers, adapter)``: its prompts' shifts
    (picklable, so that an engine may run it on a worker holding its own pair)."""
    first, items, answers, adapter = batch
    if adapter is not None and adapter != tuned.active_adapter:
        tuned.use_adapter(adapter)
    done = _answers(base, tuned, items, answers, max_new_tokens, batch_size, system, first)
    shared = _one_batch(base, tuned)
    per: list[PromptShift | None] = [None] * len(done)
    # left padding only where both forwards honour the mask (RWKV does not): else one at a time
    padded = all(supports(m, "padding") for m in (base, tuned))
    for chunk in _batches(done, batch_size if padded else 1, _vocab_size(tuned),
                          rows_per=1 if shared is None or shared[1][0] is None else 2):
        stats = _score_batch(base, tuned, shared, [done[i] for i in chunk], settings)
        lo = 0
        for i in chunk:
            a = done[i]
            n = len(a.ids) - a.n_prompt
            positions = []
            for j in range(n):
                r = lo + j
                positions.append(ShiftPosition(
                    index=j, id=a.ids[a.n_prompt + j], text=a.texts[j],
                    tuned_logprob=stats.tuned_logprob[r], base_logprob=stats.base_logprob[r],
                    tuned_rank=int(stats.tuned_rank[r]), base_rank=int(stats.base_rank[r]),
                    kind=classify(int(stats.base_rank[r]), marginal), kl=stats.kl[r],
                    tuned_top=_alts(tuned, stats.tuned_top[r]), base_top=_alts(base, stats.base_top[r]),
                    promoted=_gains(tuned, stats.promoted[r]), demoted=_gains(tuned, stats.demoted[r])))
            lo += n
            prompt, _, cid, tags = items[i]
            per[i] = PromptShift(prompt, a.rendered, a.answer, a.source, tuple(positions), cid, tags)
    return per
