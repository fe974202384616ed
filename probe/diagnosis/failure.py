"""A case that could not be read or run: returned in place of its Diagnosis, never raised."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FailedCase:
    """The record of a case that could not be read or run: which case, where, which field, why.

    ``diagnose_many`` returns one in place of a Diagnosis for a bad line or a case that raised;
    tell them apart with ``isinstance(r, FailedCase)``. (It is a result, not an exception; its
    old name ``CaseError`` still imports.)
    """

    id: str
    message: str
    line: int | None = None  # line of the case file (None: the case came from Python)
    field: str | None = None  # the offending field, when one is to blame

    @property
    def verdict(self) -> str:
        """Always "error": kept so that code written before ``FailedCase`` keeps working."""
        return "error"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FailedCase":
        opt = lambda k: None if d.get(k) is None else d[k]  # noqa: E731
        line = opt("line")
        return cls(str(d["id"]), str(d["message"]), None if line is None else int(line), opt("field"))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        what = f"field {self.field!r}: " if self.field else ""
        return f"case {self.id}: {where}{what}{self.message}"
