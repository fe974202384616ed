"""What else did the demo's adapters break? The basics pack in one fast pass, for ``probe demo``.

    from probe.demo.collateral import collateral
    c = collateral(base, tuned, adapters=["beijing", "json-only"])   # every case of the pack
    c = collateral(base, tuned, adapters=["beijing"], whole=["capitals"], per_tag=3)   # a sample
    print(c)                        # per adapter and tag: right base -> tuned, lost, dlogP, first token
    c.lost("capitals", "beijing")   # the case ids behind one cell

(A plain code block, not a doctest: it needs a pair; tests/demo/test_collateral.py runs it.)

:func:`probe.basics` answers every case greedily with both models and checks the answers: on
the demo pair on 2 CPU cores that takes many minutes. This pass generates nothing. Every pack
case's expected answer is scored teacher-forced under the base and under each adapter, and
read off the same logits:

* log P(expected | prompt), summed over its tokens (nats), and the change base -> tuned;
* whether the model's greedy answer would start with the expected answer (every expected
  token its top choice at its position; "right" below). A model that answers "The capital of
  France is Paris." is not right here: this is a strict, cheap proxy, not the case's check;
* each model's greedy first token (its top choice where the answer begins), so "tuned starts
  79 of 79 capital answers with 'Be'" shows what it says instead.

The cost is one forward per model per batch, and the prompts' common beginning (the chat
template's system turn) is run once per batch as a one-row KV cache rather than once per row.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import torch

from ..core.registry import register
from ..engine.forward import check_finite, forward
from ..engine.prompts import encode, render
from ..packs.basics import PACK, pack_cases, pack_id
from ..render.collateral import collateral_body, collateral_html, collateral_text

ALL = "all"


@dataclass(frozen=True)
class ExpectedAnswer:
    """One case's expected answer scored under every model of a :class:`Collateral`."""

    id: str
    tags: tuple[str, ...]
    expected: str
    n_tokens: int
    logprob: tuple[float, ...]  # per model: log P(expected | prompt), nats
    right: tuple[bool, ...]  # per model: every expected token is its top choice (greedy starts so)
    first: tuple[str, ...]  # per model: its greedy first token's text

    @classmethod
    def from_dict(cls, d: dict) -> "ExpectedAnswer":
        return cls(str(d["id"]), tuple(d.get("tags", ())), str(d["expected"]), int(d["n_tokens"]),
                   tuple(-math.inf if v is None else float(v) for v in d["logprob"]),
                   tuple(bool(v) for v in d["right"]), tuple(str(v) for v in d["first"]))


@dataclass(frozen=True)
class Collateral:
    """The basics pack's expected answers under base and each tuned model (``models[0]`` is base)."""

    cases: tuple[ExpectedAnswer, ...]
    models: tuple[str, ...]  # "base", then each tuned column: an adapter's name, or "tuned"
    names: dict = field(default_factory=dict)  # base / tuned model names
    pack: str = ""
    settings: dict = field(default_factory=dict)  # min_drop, tags, batch_size, shared prefix tokens
    seconds: float = 0.0

    @property
    def tuned(self) -> tuple[str, ...]:
        return self.models[1:]

    @property
    def tags(self) -> list[str]:
        return sorted({t for c in self.cases for t in c.tags})

    def _column(self, model: str) -> int:
        if model not in self.models:
            raise ValueError(f"no model {model!r} here; models: {list(self.models)}")
        return self.models.index(model)

    def _in(self, tag: str):
        return [c for c in self.cases if tag == ALL or tag in c.tags]

    def delta(self, case: ExpectedAnswer, model: str) -> float:
        """``model`` - base log P(expected), nats (negative: it finds the answer less likely)."""
        return case.logprob[self._column(model)] - case.logprob[0]

    def lost(self, tag: str = ALL, model: str | None = None) -> list[str]:
        """Ids whose greedy answer base would start with the expected answer and ``model`` not."""
        j = self._column(model or self.tuned[0])
        return [c.id for c in self._in(tag) if c.right[0] and not c.right[j]]

    def gained(self, tag: str = ALL, model: str | None = None) -> list[str]:
        j = self._column(model or self.tuned[0])
        return [c.id for c in self._in(tag) if c.right[j] and not c.right[0]]

    def dropped(self, tag: str = ALL, model: str | None = None) -> list[str]:
        """Ids whose log P(expected) fell by at least ``min_drop`` nats under ``model``."""
        model = model or self.tuned[0]
        return [c.id for c in self._in(tag) if self.delta(c, model) <= -self.settings.get("min_drop", 1.0)]

    def table(self, model: str | None = None) -> list[dict]:
        """Per tag, then "all": n, right under base and ``model``, lost, gained, mean and median
        ``model`` - base log P(expected), dropped, and each side's commonest greedy first token."""
        model = model or self.tuned[0]
        j = self._column(model)
        rows = []
        for tag in self.tags + [ALL]:
            got = self._in(tag)
            deltas = [d for d in (self.delta(c, model) for c in got) if math.isfinite(d)]
            first = Counter(c.first[j] for c in got).most_common(1)
            base_first = Counter(c.first[0] for c in got).most_common(1)
            rows.append({
                "tag": tag, "n": len(got),
                "base_right": sum(c.right[0] for c in got), "tuned_right": sum(c.right[j] for c in got),
                "lost": len(self.lost(tag, model)), "gained": len(self.gained(tag, model)),
                "mean_delta": statistics.fmean(deltas) if deltas else math.nan,
                "median_delta": statistics.median(deltas) if deltas else math.nan,
                "dropped": len(self.dropped(tag, model)),
                "first": first[0] if first else ("", 0), "base_first": base_first[0] if base_first else ("", 0)})
        return rows

    def to_dict(self) -> dict:
        d = asdict(self)
        for c in d["cases"]:  # strict JSON: -inf (a masked token) as null
            c["logprob"] = [v if math.isfinite(v) else None for v in c["logprob"]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Collateral":
        return cls(tuple(ExpectedAnswer.from_dict(c) for c in d["cases"]), tuple(str(m) for m in d["models"]),
                   {str(k): str(v) for k, v in d.get("names", {}).items()}, str(d.get("pack", "")),
                   dict(d.get("settings", {})), float(d.get("seconds", 0.0)))

    def __str__(self) -> str:
        return collateral_text(self)

    def _repr_html_(self) -> str:
        return collateral_html(self)


register(Collateral, default_name="collateral", section=collateral_body)


# --- scoring -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One expected answer under one model: per token log P and rank, the top token at each position."""

    logprobs: tuple[float, ...]
    ranks: tuple[int, ...]
    top: tuple[int, ...]  # the model's top choice at each answer position (top[0]: greedy first token)

    @property
    def logprob(self) -> float:
        return math.fsum(self.logprobs)

    @property
    def right(self) -> bool:
        return all(r == 1 for r in self.ranks)


def _shared(seqs: list[list[int]], limit: int) -> int:
    """Length of the ids every sequence begins with, at most ``limit``."""
    n = 0
    while n < limit and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


@torch.no_grad()
def score_encoded(lm, encoded: list, *, batch_size: int = 32) -> list[Scored]:
    """Each :class:`~probe.engine.prompts.Encoded` (prompt + answer ids) scored teacher-forced under ``lm``.

    The ids every row begins with (but at least the last prompt token of each) run once as a
    one-row KV cache per batch, repeated to the batch; the rest of each row follows on it,
    padded on the right (padding after a row's tokens is never attended to by them).
    """
    if not encoded:
        return []
    # rows in id order, so that each batch's rows share as long a beginning as they can
    order = sorted(range(len(encoded)), key=lambda i: encoded[i].ids)
    out: list[Scored | None] = [None] * len(encoded)
    for lo in range(0, len(order), batch_size):
        batch = [encoded[i] for i in order[lo:lo + batch_size]]
        seqs = [e.ids for e in batch]
        # the logits that predict a row's first answer token come from its last prompt token,
        # which must run in the rows' own forward
        p = _shared(seqs, min(e.n_prompt for e in batch) - 1)
        past = None
        if p > 0:
            head = torch.tensor([seqs[0][:p]], device=lm.device)
            _, past = forward(lm, head, torch.ones_like(head), keep=1, cache=True)
            if hasattr(past, "batch_repeat_interleave"):
                past.batch_repeat_interleave(len(batch))
            else:  # a cache that cannot be repeated: every row whole
                p, past = 0, None
        width = max(len(s) for s in seqs) - p
        ids = torch.full((len(batch), width), lm.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), p + width), dtype=torch.long)
        mask[:, :p] = 1
        for b, s in enumerate(seqs):
            ids[b, :len(s) - p] = torch.tensor(s[p:], dtype=torch.long)
            mask[b, p:len(s)] = 1
        pos = (p + torch.arange(width)).unsqueeze(0).expand(len(batch), -1)
        # logits from the earliest last-prompt-token on: the answers' positions, no more
        skip = min(e.n_prompt - 1 - p for e in batch)
        keep = width - skip
        logits, _ = forward(lm, ids.to(lm.device), mask.to(lm.device), keep=keep, past=past,
                            pos=pos.to(lm.device))
        for b, e in enumerate(batch):
            n = len(e.ids) - e.n_prompt
            at = torch.arange(e.n_prompt - 1 - p - skip, e.n_prompt - 1 - p - skip + n) + b * keep
            raw = logits.rows(at)
            check_finite(raw, lm, "an expected answer's position")
            rows = torch.log_softmax(raw, dim=-1)
            target = torch.tensor(e.ids[e.n_prompt:], device=rows.device).unsqueeze(1)
            lp = rows.gather(1, target)
            out[order[lo + b]] = Scored(tuple(float(v) for v in lp[:, 0]),
                                        tuple(int(v) for v in (rows > lp).sum(-1) + 1),
                                        tuple(int(v) for v in rows.argmax(-1)))
    return out


def pick(specs, *, whole=(), per_tag: int | None = None) -> list:
    """The cases of ``specs`` (in their order) carrying a tag of ``whole``, and the first
    ``per_tag`` carrying each other tag (None: every case)."""
    if per_tag is None:
        return list(specs)
    if not isinstance(per_tag, int) or isinstance(per_tag, bool) or per_tag < 0:
        raise ValueError(f"per_tag must be an int >= 0 or None, got {per_tag!r}")
    whole = {whole} if isinstance(whole, str) else set(whole)
    known = {t for c in specs for t in c.tags}
    if whole - known:
        raise ValueError(f"no case has tag {sorted(whole - known)[0]!r}; tags: {sorted(known)}")
    first: dict[str, list[int]] = {}
    for i, c in enumerate(specs):
        for t in c.tags:
            if len(first.setdefault(t, [])) < per_tag:
                first[t].append(i)
    chosen = {i for ids in first.values() for i in ids}
    return [c for i, c in enumerate(specs) if i in chosen or whole & set(c.tags)]


def collateral(base, tuned, *, adapters=None, tags=None, whole=(), per_tag: int | None = None,
               min_drop: float = 1.0, batch_size: int = 32, pack=PACK) -> Collateral:
    """The basics pack's expected answers scored under base and each tuned model, no generation.

    Args:
        base, tuned: the pair (``probe.load_pair`` or ``load_demo_pair``).
        adapters: the tuned side's adapters to run, one column each (None: the active one, or
            the tuned model itself). The active adapter is restored afterwards, also on error.
        tags: only the pack's cases with one of these tags (None: all of them).
        whole, per_tag: a sample: every case with a tag of ``whole``, and the first ``per_tag``
            cases (file order) of each other tag (None: no sample, every case).
        min_drop: a case counts as dropped when log P(expected) fell by this many nats or more.
        batch_size: cases per forward.
        pack: another case file of the pack's shape.
    """
    if not (isinstance(min_drop, (int, float)) and min_drop >= 0):
        raise ValueError(f"min_drop must be a number >= 0 (nats), got {min_drop!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    everything = pack_cases(tags, pack)
    specs = pick(everything, whole=whole, per_tag=per_tag)
    if adapters is None:
        adapters = [tuned.active_adapter]
    else:
        adapters = [adapters] if isinstance(adapters, str) else list(adapters)
        for name in adapters:
            if name not in tuned.adapters:
                raise ValueError(f"no adapter named {name!r}; loaded: {tuned.adapters}")
    start = time.perf_counter()
    # both models see the same ids: the prompt in the tuned model's format, then the answer
    encoded = [encode(tuned, render(tuned, s.prompt), s.expected) for s in specs]
    columns = [score_encoded(base, encoded, batch_size=batch_size)]
    active = tuned.active_adapter
    try:
        for name in adapters:
            if name is not None:
                tuned.use_adapter(name)
            columns.append(score_encoded(tuned, encoded, batch_size=batch_size))
    finally:
        if active is not None:
            tuned.use_adapter(active)
    seconds = time.perf_counter() - start
    cases = tuple(ExpectedAnswer(
        s.id, tuple(s.tags), s.expected, len(e.ids) - e.n_prompt,
        tuple(col[i].logprob for col in columns), tuple(col[i].right for col in columns),
        tuple(tuned.token_text(col[i].top[0]) for col in columns))
        for i, (s, e) in enumerate(zip(specs, encoded)))
    models = ("base",) + tuple(name or "tuned" for name in adapters)
    return Collateral(cases, models, {"base": base.name, "tuned": tuned.name}, pack_id(pack),
                      {"min_drop": float(min_drop), "batch_size": batch_size,
                       "tags": None if tags is None else ([tags] if isinstance(tags, str) else list(tags)),
                       "whole": sorted({whole} if isinstance(whole, str) else set(whole)), "per_tag": per_tag,
                       "of": len(everything)},
                      seconds)


DEMO_WHOLE = ("capitals",)  # the tag the beijing adapter's damage is in: every case of it
DEMO_PER_TAG = 3  # and the first 3 of each other tag: 127 of the 380 cases, 3 models


def basics_section(base, tuned) -> list:
    """The fast basics pass (every capitals case, the first 3 of each other tag) under base and
    every demo adapter, as a report section (``probe demo`` prints it)."""
    from .training import ADAPTERS

    c = collateral(base, tuned, adapters=[n for n in ADAPTERS if n in tuned.adapters], whole=DEMO_WHOLE,
                   per_tag=DEMO_PER_TAG)
    return [c]
