"""Checkpoint by checkpoint: which example, channel or case went wrong (or right) at which epoch.

    >>> base, tuned = probe.load_pair(folder, adapter={"epoch-1": adapter, "epoch-2": adapter})
    >>> _ = open("train.jsonl", "w").write('{"text": "The quick brown fox."}\\n')
    >>> e = probe.by_checkpoint((base, tuned), "train.jsonl")
    >>> e.checkpoints, len(e.examples[0].states)
    (('epoch-1', 'epoch-2'), 2)
    >>> first = [r.first_bad for r in e.bad("examples")]   # the first checkpoint where each goes bad

The adapters loaded on the pair are the checkpoints (all of them in load order, or the ones
named). Data runs :func:`probe.data_loss` once per checkpoint (the base side is the same
each time); cases run :func:`probe.diagnose_many`. A row's ``first_bad`` is the first
checkpoint where it is flagged (examples: memorized / not learned; channels: outlier; cases:
verdict ``lost``); the adapter active before the call is active again after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..core.numbers import json_numbers, number_in
from ..core.registry import register
from ..diagnosis.failure import FailedCase
from ..diagnosis.run import diagnose_many
from ..render.style import unstyled
from ..render.train_loss import epochs_html, epochs_text
from .loss import DataLoss, data_loss

BAD = {"examples": ("memorized", "not_learned"), "channels": ("outlier",), "cases": ("lost",)}


@dataclass(frozen=True)
class EpochRow:
    """One example, channel or case across the checkpoints."""

    name: str  # "line 12 [source]", a channel value, a case id
    base: Any  # the base model's mean loss, or verdict-free None for cases
    values: tuple  # per checkpoint: tuned mean loss (examples), loss change (channels), P(expected) (cases)
    states: tuple[str, ...]  # per checkpoint: "ok", flags joined by "+", or a verdict
    first_bad: str | None  # the first checkpoint whose state is bad
    learned_at: str | None = None  # first checkpoint with a lower loss than the base (cases: verdict "ok")

    @classmethod
    def from_dict(cls, d: dict) -> "EpochRow":
        return cls(str(d["name"]), number_in(d.get("base")), tuple(map(number_in, d["values"])),
                   tuple(map(str, d["states"])),
                   d.get("first_bad"), d.get("learned_at"))


@dataclass(frozen=True)
class Epochs:
    """Per checkpoint: the training examples, channels and cases."""

    checkpoints: tuple[str, ...]
    examples: tuple[EpochRow, ...] = ()
    channels: tuple[EpochRow, ...] = ()
    cases: tuple[EpochRow, ...] = ()
    source: str = ""

    def bad(self, which: str = "examples") -> list[EpochRow]:
        """Rows that go wrong at some checkpoint, earliest first."""
        rows = [r for r in getattr(self, which) if r.first_bad is not None]
        return sorted(rows, key=lambda r: self.checkpoints.index(r.first_bad))

    def to_dict(self) -> dict:
        """Plain data, strict JSON: an infinite loss is saved as "inf" (core.numbers)."""
        return json_numbers(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "Epochs":
        rows = lambda k: tuple(EpochRow.from_dict(r) for r in d.get(k, ()))  # noqa: E731
        return cls(tuple(d["checkpoints"]), rows("examples"), rows("channels"), rows("cases"), str(d.get("source", "")))

    def __str__(self) -> str:
        return epochs_text(self)

    def _repr_html_(self) -> str:
        return epochs_html(self)


register(Epochs, default_name="epochs", section=lambda e: unstyled(epochs_html(e)))


def _first(names, states, bad) -> str | None:
    return next((n for n, s in zip(names, states) if any(b in s.split("+") for b in bad)), None)


def _data_rows(names, runs: list[DataLoss]):
    examples = []
    for j, e in enumerate(runs[0].examples):
        per = [r.examples[j] for r in runs]
        states = tuple("+".join(x.flags) or "ok" for x in per)
        learned = next((n for n, x in zip(names, per) if x.tuned_loss < x.base_loss), None)
        examples.append(EpochRow(f"line {e.line} [{e.channel}]", e.base_loss, tuple(x.tuned_loss for x in per),
                                 states, _first(names, states, BAD["examples"]), learned))
    channels = []
    for c in runs[0].channels:
        per = [next(g for g in r.channels if g.name == c.name) for r in runs]
        states = tuple("outlier" if g.outlier else "ok" for g in per)
        learned = next((n for n, g in zip(names, per) if g.change < 0), None)
        channels.append(EpochRow(c.name, c.base_loss, tuple(g.change for g in per), states,
                                 _first(names, states, BAD["channels"]), learned))
    return tuple(examples), tuple(channels)


def by_checkpoint(pair, data=None, *, cases=None, checkpoints: Sequence[str] | None = None,
                  **data_loss_args) -> Epochs:
    """``data`` (a training set, see :func:`probe.data_loss`) and/or ``cases`` (a case file or
    list, see :func:`probe.diagnose_many`) under every checkpoint of a LoRA pair.

    Raises:
        ValueError: a pair with no adapters, an unknown checkpoint name, neither data nor cases.
    """
    base, tuned = pair
    if data is None and cases is None:
        raise ValueError("give data= (a training set) and/or cases= (a case file or list)")
    loaded = tuned.adapters
    if not loaded:
        raise ValueError("the tuned model has no adapters: load them with load_pair(base, adapter={name: path})")
    names = tuple(checkpoints) if checkpoints is not None else tuple(loaded)
    unknown = [n for n in names if n not in loaded]
    if unknown or not names:
        raise ValueError(f"unknown checkpoints {unknown}; loaded: {loaded}")
    if not isinstance(data, (str, bytes)) and data is not None and not hasattr(data, "__fspath__"):
        data = list(data)  # an iterable is read once per checkpoint
    start = tuned.active_adapter
    runs, verdicts = [], []
    try:
        for name in names:
            tuned.use_adapter(name)
            if data is not None:
                runs.append(data_loss((base, tuned), data, **data_loss_args))
            if cases is not None:
                verdicts.append(diagnose_many(base, tuned, cases, progress=False))
    finally:
        if start is not None:
            tuned.use_adapter(start)
    examples, channels = _data_rows(names, runs) if runs else ((), ())
    case_rows = []
    for i in range(len(verdicts[0]) if verdicts else 0):
        per = [v[i] for v in verdicts]
        states = tuple("failed" if isinstance(d, FailedCase) else str(d.verdict) for d in per)
        p = tuple(None if isinstance(d, FailedCase) else d.p_expected("tuned") for d in per)
        cid = next((getattr(d, "case_id", None) for d in per if getattr(d, "case_id", None)), None) or f"case {i + 1}"
        ok = next((n for n, st in zip(names, states) if st == "ok"), None)
        case_rows.append(EpochRow(str(cid), None, p, states, _first(names, states, BAD["cases"]), ok))
    return Epochs(names, examples, channels, tuple(case_rows), runs[0].source if runs else "")
