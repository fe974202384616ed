"""The checkpoints a pair holds, each with the learning rate TracIn weights it by.

TracIn sums, over the checkpoints saved during training, the learning rate times the dot
product of the example's and the query's gradients. A checkpoint stands for the steps since
the one before it (the first: since step 0), and its weight is the mean learning rate of
those steps, read from the ``trainer_state.json`` that transformers' Trainer saves in each
checkpoint folder (``log_history``: ``{"step": s, "learning_rate": lr}``, the rate the
optimizer used at step ``s``). Each example is seen once per epoch, so the mean rate over an
epoch is the expected rate it was seen at. Where no state is found (a plain adapter folder)
the weight is 1 and the checkpoint says its rate is unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Checkpoint:
    """One adapter of the pair, as a TracIn checkpoint."""

    name: str  # the adapter's name on the model ("default", "epoch-1", ...)
    step: int | None = None  # its global step (trainer_state.json), None if unknown
    lr: float | None = None  # mean learning rate over its steps, None if unknown

    @property
    def weight(self) -> float:
        return 1.0 if self.lr is None else self.lr

    def to_dict(self) -> dict:
        return {"name": self.name, "step": self.step, "lr": self.lr}

    @classmethod
    def from_dict(cls, d: dict) -> "Checkpoint":
        return cls(str(d["name"]), None if d.get("step") is None else int(d["step"]),
                   None if d.get("lr") is None else float(d["lr"]))


def read_state(folder) -> dict | None:
    """``trainer_state.json`` of a checkpoint folder (None when missing or unreadable)."""
    if not folder:
        return None
    path = Path(folder) / "trainer_state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _rates(state: dict) -> dict[int, float]:
    out = {}
    for h in state.get("log_history") or ():
        if isinstance(h, dict) and isinstance(h.get("step"), int) and isinstance(h.get("learning_rate"), (int, float)):
            if math.isfinite(h["learning_rate"]):
                out[h["step"]] = float(h["learning_rate"])
    return out


def checkpoints_of(lm, names=None) -> tuple[Checkpoint, ...]:
    """The checkpoints of a tuned LM: the adapters named (default: the active one when it holds
    one adapter, else every loaded adapter in load order), ordered by step where known.

    Raises:
        ValueError: a plain model (no adapter) with names given, or an unknown name.
    """
    loaded = lm.adapters
    if names is None:
        if not loaded:
            return (Checkpoint("model"),)
        names = loaded
    names = list(names)
    unknown = [n for n in names if n not in loaded]
    if unknown or not names:
        raise ValueError(f"unknown checkpoints {unknown}; the pair holds the adapters {loaded}")
    found = []
    for n in names:
        state = read_state(lm.adapter_paths.get(n))
        step = state.get("global_step") if state else None
        found.append((n, step if isinstance(step, int) else None, _rates(state) if state else {}))
    if all(s is not None for _, s, _ in found):
        found.sort(key=lambda f: f[1])
    out, prev = [], 0
    for n, step, rates in found:
        lr = None
        if step is not None:
            inside = [r for s, r in rates.items() if prev < s <= step]
            lr = math.fsum(inside) / len(inside) if inside else None
            prev = step
        out.append(Checkpoint(n, step, lr))
    return tuple(out)
