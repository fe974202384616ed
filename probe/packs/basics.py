"""What else broke? The bundled basics pack run through base and tuned, reported by tag.

    >>> b = probe.basics(base, tuned, tags=["capitals", "units"])   # all 380 cases without tags=
    >>> rows = b.table()                 # per tag: lost / gained / kept / never, the log P(expected) drop
    >>> ids = b.lost("capitals")         # the case ids behind one cell
    >>> why = probe.diagnose_many(base, tuned, b.cases(ids[:3]), progress=False)   # why they broke

The pack (``probe/packs/basics.jsonl``, built by ``python -m probe.packs.make_basics`` from
reviewable fact tables) holds general-knowledge and skill cases nobody writes for their own
fine-tune, each with its expected answer, an explicit check and tags. Two passes, both on the
existing machinery:

* **log-prob** (:func:`probe.shift` with ``answers="expected"``): every expected answer scored
  teacher-forced under both models, one forward per batch (one for both models on a LoRA pair).
  Per case: log P(expected) under each model and whether each model's greedy answer would start
  with it (every token rank 1). No generation: the cheap pass, ``generate=False`` stops here.
* **greedy** (:func:`probe.regression`): both models answer freely (greedy, ``max_new_tokens``)
  and each case's own check says right or wrong: lost / gained / kept / never by tag.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.registry import register
from ..diagnosis.run import CaseSpec, FailedCase, read_cases
from ..render.basics import basics_body, basics_html, basics_text
from ..shifts.map import shift
from ..shifts.regression import ALL, Regression, regression

PACK = Path(__file__).parent / "basics.jsonl"


def pack_id(path=PACK) -> str:
    """The pack file's name and the first 12 hex digits of its SHA-256 (which pack a result used)."""
    return Path(path).stem + "@" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def pack_cases(tags=None, path=PACK) -> list[CaseSpec]:
    """The pack's cases, in file order; with ``tags``, only those carrying one of them.

    Raises:
        ValueError: a line of the pack is malformed (file and line), or a tag matches no case.
    """
    items = read_cases(path)
    bad = [e for e in items if isinstance(e, FailedCase)]
    if bad:
        raise ValueError(f"{path}: " + "; ".join(str(e) for e in bad[:3]))
    if tags is None:
        return items
    tags = [tags] if isinstance(tags, str) else list(tags)
    known = {t for c in items for t in c.tags}
    unknown = sorted(set(tags) - known)
    if unknown:
        raise ValueError(f"no case of the pack has tag {unknown[0]!r}; its tags: {sorted(known)}")
    return [c for c in items if set(c.tags) & set(tags)]


@dataclass(frozen=True)
class ExpectedScore:
    """One case's expected answer scored teacher-forced under both models."""

    id: str
    tags: tuple[str, ...]
    expected: str
    base_logprob: float  # log P(expected | prompt), summed over its tokens (nats)
    tuned_logprob: float
    n_tokens: int
    base_greedy: bool  # every expected token is the base's top choice: its greedy answer starts so
    tuned_greedy: bool

    @property
    def delta(self) -> float:
        """tuned - base log P(expected), nats (negative: tuned finds the answer less likely)."""
        return self.tuned_logprob - self.base_logprob

    @classmethod
    def from_dict(cls, d: dict) -> "ExpectedScore":
        lp = lambda v: -math.inf if v is None else float(v)  # noqa: E731 - null: -inf in strict JSON
        return cls(str(d["id"]), tuple(d.get("tags", ())), str(d["expected"]), lp(d["base_logprob"]),
                   lp(d["tuned_logprob"]), int(d["n_tokens"]), bool(d["base_greedy"]), bool(d["tuned_greedy"]))


@dataclass(frozen=True)
class Basics:
    """The basics pack on one pair: expected-answer scores, and (unless skipped) the greedy regression."""

    scores: tuple[ExpectedScore, ...]
    regression: Regression | None = None
    pack: str = ""  # pack_id() of the file the cases came from
    models: dict[str, str] = field(default_factory=dict)
    adapter: str | None = None
    settings: dict = field(default_factory=dict)  # min_drop, max_new_tokens, tags
    seconds: dict = field(default_factory=dict)  # "logprob" / "greedy": wall time of each pass
    promoted: tuple[dict, ...] = ()  # tokens tuned raised most often over the expected answers' positions

    @property
    def tags(self) -> list[str]:
        return sorted({t for s in self.scores for t in s.tags})

    def _in(self, tag: str):
        return [s for s in self.scores if tag == ALL or tag in s.tags]

    def dropped(self, tag: str = ALL) -> list[str]:
        """Ids whose log P(expected) fell by at least ``min_drop`` nats under tuned."""
        return [s.id for s in self._in(tag) if s.delta <= -self.settings.get("min_drop", 1.0)]

    def lost(self, tag: str = ALL) -> list[str]:
        """Ids the base answered right and tuned wrong (greedy, each case's check); without the
        greedy pass, those whose greedy answer the base would start with the expected one and tuned not."""
        if self.regression is not None:
            return self.regression.cell(tag, "lost")
        return [s.id for s in self._in(tag) if s.base_greedy and not s.tuned_greedy]

    def table(self) -> list[dict]:
        """Per tag, then "all": n, lost / gained / kept / never (greedy; None without that pass),
        mean tuned - base log P(expected) (nats), and how many fell by >= min_drop (dropped)."""
        reg = {r["tag"]: r for r in self.regression.table()} if self.regression is not None else {}
        rows = []
        for tag in self.tags + [ALL]:
            got = self._in(tag)
            deltas = [s.delta for s in got if math.isfinite(s.delta)]
            row = {"tag": tag, "n": len(got), "mean_delta": statistics.fmean(deltas) if deltas else math.nan,
                   "dropped": len(self.dropped(tag))}
            for o in ("lost", "gained", "kept", "never"):
                row[o] = reg[tag][o] if tag in reg else None
            rows.append(row)
        return rows

    def cases(self, ids=None) -> list[CaseSpec]:
        """The pack's CaseSpecs (of ``ids``), e.g. for :func:`probe.diagnose_many` on the lost ones."""
        specs = pack_cases(path=self.settings.get("pack_file") or PACK)
        if ids is None:
            return specs
        want = set(ids)
        return [c for c in specs if c.id in want]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["regression"] = None if self.regression is None else self.regression.to_dict()
        for s in d["scores"]:  # strict JSON: -inf (a masked token) as null
            for k in ("base_logprob", "tuned_logprob"):
                s[k] = s[k] if math.isfinite(s[k]) else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Basics":
        return cls(tuple(ExpectedScore.from_dict(s) for s in d["scores"]),
                   None if d.get("regression") is None else Regression.from_dict(d["regression"]),
                   str(d.get("pack", "")), {str(k): str(v) for k, v in d.get("models", {}).items()},
                   d.get("adapter"), dict(d.get("settings", {})), dict(d.get("seconds", {})),
                   tuple(dict(p) for p in d.get("promoted", ())))

    def __str__(self) -> str:
        return basics_text(self)

    def _repr_html_(self) -> str:
        return basics_html(self)


register(Basics, default_name="basics", section=basics_body)


def basics(base, tuned=None, *, tags=None, generate: bool = True, max_new_tokens: int = 32,
           min_drop: float = 1.0, batch_size: int = 16, progress: bool = False, engine=None,
           pack=PACK) -> Basics:
    """Run the basics pack through both models and say which tags lost what.

    Args:
        base, tuned: the pair (``probe.load_pair``), or ``basics((base, tuned))``.
        tags: only the cases with one of these tags (e.g. ``["capitals", "arithmetic"]``).
        generate: also answer every case greedily with both models and check it (the verdicts;
            the costly pass). False: the log-prob pass alone.
        max_new_tokens: the greedy answers' length (the pack's answers are short).
        min_drop: a case counts as dropped when log P(expected) fell by this many nats or more.
        batch_size: prompts per batch in both passes.
        engine: where the log-prob pass runs (None: here; see :func:`probe.shift`).
        pack: another case file of the same shape to run instead (your own pack).
    """
    if tuned is None:
        if not (isinstance(base, tuple) and len(base) == 2):
            raise TypeError("basics(base, tuned) or basics((base, tuned)): give both models")
        base, tuned = base
    if not (isinstance(min_drop, (int, float)) and min_drop >= 0):
        raise ValueError(f"min_drop must be a number >= 0 (nats), got {min_drop!r}")
    specs = pack_cases(tags, pack)
    start = time.perf_counter()
    s = shift(base, tuned, specs, answers="expected", top_k=0, promote_k=3, batch_size=batch_size,
              progress=progress, engine=engine)
    seconds = {"logprob": time.perf_counter() - start}
    scores = tuple(ExpectedScore(
        ps.case_id, ps.tags, ps.answer, sum(p.base_logprob for p in ps.positions),
        sum(p.tuned_logprob for p in ps.positions), len(ps.positions),
        all(p.base_rank == 1 for p in ps.positions), all(p.tuned_rank == 1 for p in ps.positions))
        for ps in s.prompts)
    promoted = tuple({"text": t.text, "count": t.count, "n_prompts": t.n_prompts, "mean_gain": t.mean_gain}
                     for t in s.promoted[:10])
    reg = None
    if generate:
        start = time.perf_counter()
        reg = regression(base, tuned, specs, max_new_tokens=max_new_tokens, batch_size=batch_size)
        seconds["greedy"] = time.perf_counter() - start
    own = Path(pack).resolve() == PACK.resolve()
    return Basics(scores, reg, pack_id(pack), {"base": base.name, "tuned": tuned.name}, tuned.active_adapter,
                  {"min_drop": float(min_drop), "max_new_tokens": max_new_tokens, "pack_file": None if own else str(pack),
                   "tags": None if tags is None else ([tags] if isinstance(tags, str) else list(tags))},
                  seconds, promoted)
