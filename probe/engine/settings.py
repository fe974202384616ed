"""One settings object for generation, validated once, and the small closed vocabularies.

    >>> s = GenerationSettings(max_new_tokens=32, do_sample=True, temperature=0.7, seed=0)
    >>> s.trace_dict(force="```json\\n")["temperature"]
    0.7

``generate``, ``generate_many`` and ``generate_rows`` build one of these from their keyword
arguments; the engine reads only this object. ``trace_dict`` writes the same keys that
``TokenTrace.settings`` always held, so old case files read back the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from ..core.vocab import BASE_ADAPTER, BaseAdapter, StopReason  # noqa: F401  (re-exported)
from .scoring import check_top_k


def _watch_tuple(watch) -> tuple[str, ...]:
    items = (watch,) if isinstance(watch, str) else tuple(watch)
    for w in items:
        if not isinstance(w, str) or not w:
            raise ValueError(f"watch strings must be non-empty str, got {w!r}")
    return items


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate (the same for every row of a call)."""

    max_new_tokens: int = 64  # tokens the model may add after the forced prefix
    top_k: int = 5  # alternatives reported per token
    watch: tuple[str, ...] = ()  # strings whose P(next) is recorded at every free step
    stop: str | tuple[str, ...] | None = None  # string(s) that end generation once produced
    do_sample: bool = False  # sample (True) or take the argmax (False)
    temperature: float = 1.0  # sampling only
    top_p: float = 1.0  # nucleus filtering, sampling only
    seed: int | None = None  # sampling seed (None: a fresh one)

    def __post_init__(self):
        n = self.max_new_tokens
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {n!r}")
        check_top_k(self.top_k)
        object.__setattr__(self, "watch", _watch_tuple(self.watch))
        stop = self.stop
        if stop is not None and not isinstance(stop, str):
            stop = tuple(stop)
            if not all(isinstance(s, str) and s for s in stop):
                raise ValueError(f"stop must be a str or a list of non-empty str, got {self.stop!r}")
            object.__setattr__(self, "stop", stop)
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise TypeError(f"seed must be an int or None, got {type(self.seed).__name__}")

    @property
    def stops(self) -> list[str]:
        """The stop strings as a list (empty: none)."""
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def sampled(self, seed: int | None) -> "GenerationSettings":
        """The same settings, sampling with ``seed`` (None: greedy)."""
        return replace(self, do_sample=seed is not None, seed=seed)

    def trace_dict(self, force: str = "") -> dict:
        """What ``TokenTrace.settings`` records (the keys it always had)."""
        stop = list(self.stop) if isinstance(self.stop, tuple) else self.stop
        return {"top_k": self.top_k, "max_new_tokens": self.max_new_tokens, "watch": list(self.watch),
                "stop": stop, "do_sample": self.do_sample, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, "force": force}


def check_forces(forces: Sequence) -> None:
    for f in forces:
        if not isinstance(f, str):
            raise TypeError(f"force must be a str (or one str per prompt), got {type(f).__name__}")
