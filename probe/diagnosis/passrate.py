"""Pass rates of sampled runs with Wilson score intervals.

    >>> r = PassRate(9, 10)
    >>> str(r), round(r.low, 3), round(r.high, 3)
    ('9/10', 0.596, 0.982)

The Wilson interval stays inside [0, 1] and is honest at 0/n and n/n, where the normal
approximation collapses to a point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z = 1.96  # two-sided 95%


def wilson(passed: int, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval (low, high) of ``passed`` successes in ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


@dataclass(frozen=True)
class PassRate:
    """How many of ``n`` sampled generations passed the check."""

    passed: int
    n: int

    def __post_init__(self):
        if not (isinstance(self.n, int) and isinstance(self.passed, int) and 0 <= self.passed <= self.n):
            raise ValueError(f"a pass rate needs 0 <= passed <= n, got {self.passed}/{self.n}")

    @property
    def rate(self) -> float:
        return self.passed / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.passed, self.n)

    @property
    def low(self) -> float:
        return self.interval[0]

    @property
    def high(self) -> float:
        return self.interval[1]

    def overlaps(self, other: "PassRate") -> bool:
        """Whether the two 95% intervals share any point."""
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict:
        return {"passed": self.passed, "n": self.n}

    @classmethod
    def from_dict(cls, d: dict) -> "PassRate":
        return cls(int(d["passed"]), int(d["n"]))

    def __str__(self) -> str:
        return f"{self.passed}/{self.n}"

    def long(self) -> str:
        """``9/10 (60-98%)``: the count and its 95% interval."""
        return f"{self} ({100 * self.low:.0f}-{100 * self.high:.0f}%)"
