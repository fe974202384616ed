"""Loss by channel and by token kind, and the flags: memorized, not learned, channel outlier.

The rules (defaults justified in the README, "What did the model learn from its data?"):

* **memorized**: the tuned mean loss of the example is at most ``memorized`` nats (default
  0.1: every scored token at a geometric-mean probability >= 0.90) while the base's was at
  least ``high_base`` nats (default 1.0: geometric-mean probability <= 0.37). The model went
  from unsure to reciting it.
* **not learned**: the base had something to learn (base mean > ``memorized``) and tuning
  removed less than ``not_learned`` of it (default 0.1: tuned > 0.9 x base).
* **channel outlier**: with two channels or more, a channel whose loss change (tuned - base,
  token-weighted) differs from the token-weighted median change of the other channels by at
  least ``outlier`` nats (default 0.5: a per-token probability ratio of e^0.5 = 1.65 more or
  less than a typical token outside the channel got). A median, not the other channels' tokens
  pooled: one channel that moved a lot would drag a pooled mean and flag every other channel;
  weighted by tokens, so a channel of a few tokens does not decide it either.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

THRESHOLDS = {"memorized": 0.1, "high_base": 1.0, "not_learned": 0.1, "outlier": 0.5}


def loss_in(value) -> float:
    """A saved loss: null is +inf (a token given probability 0; case files are strict JSON)."""
    return math.inf if value is None else float(value)


def weighted_median(pairs) -> float | None:
    """The median of ``(value, weight)`` pairs: the value at half the total weight (the mean of
    the two values either side where a value ends exactly at half). Pairs with a weight <= 0 or
    a value that is not finite are left out; None when none is left."""
    return medians_without_each([*pairs, (math.nan, 0)])[-1]


def medians_without_each(pairs) -> list[float | None]:
    """For each pair, :func:`weighted_median` of all the *other* pairs, in O(n log n): sorted
    once, each median found by bisection on the running weights with that pair taken out."""
    pairs = list(pairs)
    ok = sorted((float(v), w, i) for i, (v, w) in enumerate(pairs) if w > 0 and math.isfinite(v))
    vals = [v for v, _, _ in ok]
    cum, total = [], 0
    for _, w, _ in ok:
        total += w
        cum.append(total)
    where = {i: p for p, (_, _, i) in enumerate(ok)}
    out = []
    for i, (_, w) in enumerate(pairs):
        p = where.get(i)
        cut = w if p is not None else 0  # this pair's weight, taken out of every sum past it
        half = (total - cut) / 2
        if half <= 0:
            out.append(None)
            continue
        seen = lambda j: cum[j] - (cut if p is not None and j >= p else 0)  # noqa: E731
        lo, hi = 0, len(ok) - 1  # the first j whose running weight (this pair out) reaches half
        while lo < hi:
            mid = (lo + hi) // 2
            if seen(mid) >= half:
                hi = mid
            else:
                lo = mid + 1
        if seen(lo) > half:
            out.append(vals[lo])
            continue
        nxt = next((j for j in (lo + 1, lo + 2) if j < len(ok) and j != p), None)
        out.append((vals[lo] + vals[nxt]) / 2 if nxt is not None else vals[lo])
    return out


@dataclass(frozen=True)
class GroupLoss:
    """Token-weighted mean loss of a group of tokens (a channel value or a token kind)."""

    name: str
    examples: int
    tokens: int
    base_loss: float  # mean -log p over the group's scored tokens, nats
    tuned_loss: float
    outlier: bool = False
    rest_change: float | None = None  # the token-weighted median change of the other groups

    @property
    def change(self) -> float:
        """tuned - base mean loss (negative: the tuned model learned these tokens)."""
        return self.tuned_loss - self.base_loss

    @classmethod
    def from_dict(cls, d: dict) -> "GroupLoss":
        return cls(str(d["name"]), int(d["examples"]), int(d["tokens"]), loss_in(d["base_loss"]),
                   loss_in(d["tuned_loss"]), bool(d.get("outlier", False)),
                   None if d.get("rest_change") is None else float(d["rest_change"]))  # "inf" too


def check_thresholds(given: dict | None) -> dict:
    out = dict(THRESHOLDS)
    for k, v in (given or {}).items():
        if k not in THRESHOLDS:
            raise ValueError(f"unknown threshold {k!r}; known: {sorted(THRESHOLDS)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
            raise ValueError(f"threshold {k!r} must be a number >= 0, got {v!r}")
        out[k] = float(v)
    return out


def example_flags(base: float, tuned: float, th: dict) -> tuple[str, ...]:
    flags = []
    if tuned <= th["memorized"] and base >= th["high_base"]:
        flags.append("memorized")
    if base > th["memorized"] and tuned > base * (1 - th["not_learned"]):
        flags.append("not_learned")
    return tuple(flags)


def channel_value(record, channel) -> str:
    """The channel of one record: a field (dotted for nested), or a function of the record."""
    if channel is None:
        return "all"
    if callable(channel):
        return str(channel(record))
    value = record
    for part in str(channel).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if value else "(none)"
    return str(value)


class Sums:
    """Running per-group token sums."""

    def __init__(self):
        self.n = defaultdict(int)
        self.ex = defaultdict(set)
        self.b = defaultdict(float)
        self.t = defaultdict(float)

    def add(self, name: str, example: int, base: float, tuned: float) -> None:
        self.n[name] += 1
        self.ex[name].add(example)
        self.b[name] += base
        self.t[name] += tuned

    def groups(self, order=None, outlier: float | None = None) -> tuple[GroupLoss, ...]:
        names = list(order) if order else sorted(self.n, key=lambda k: (-self.n[k], k))
        names = [k for k in names if self.n.get(k)]
        change = {k: (self.t[k] - self.b[k]) / self.n[k] for k in names}
        rests = medians_without_each([(change[k], self.n[k]) for k in names])
        out = []
        for k, rest in zip(names, rests):
            n, b, t = self.n[k], self.b[k], self.t[k]
            # outlier=inf switches the flag off, even for a change of -inf (a base loss of +inf)
            flag = (outlier is not None and outlier < math.inf and rest is not None
                    and abs(change[k] - rest) >= outlier)
            out.append(GroupLoss(k, len(self.ex[k]), n, b / n, t / n, flag, rest))
        return tuple(out)
