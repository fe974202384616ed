"""What the trainer logged: loss (train and eval), learning rate, grad norm by step and epoch,
epoch boundaries, and the readings of the curve.

    >>> rows = "".join(f"{s},{2 - 0.01 * s - 0.5 * ((s - 1) // 10)},{s / 10}\\n" for s in range(1, 31))
    >>> _ = open("loss.csv", "w").write("step,loss,epoch\\n" + rows)
    >>> log = probe.training_log("loss.csv")          # a run folder or one log file
    >>> log.boundaries                                # the first step of each epoch after the first
    (11, 21)
    >>> [f.rule for f in log.warnings]                # the findings that warn
    ['stepped_loss']
    >>> fig = log.figure()                            # plotly: loss over steps, epochs, findings

Reads HF Trainer / TRL ``trainer_state.json`` (in a run folder: the top-level one or the
checkpoint with the largest ``global_step``), LLaMA-Factory's ``trainer_log.jsonl``,
TensorBoard event files (pure Python; no tensorboard needed) and a CSV or JSON Lines file of
step and loss. The readings are rules in :mod:`probe.train.readings`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.registry import register
from ..render.training import training_html, training_section, training_text, loss_figure
from .formats import LOOKED_FOR, TrainingLogError, read as read_records
from .readings import Finding, Rules, epoch_index, read as read_findings

CHANNEL = re.compile(r"^(?:loss_(?P<a>[a-z0-9_]+)|(?P<b>[a-z0-9_]+)_loss)$")
# component losses and optimizer numbers, not data channels
NOT_CHANNELS = {"train", "total", "avg", "mean", "eval", "predict", "test", "val", "validation", "aux", "scale",
                "z", "router", "moe", "balance", "kl", "nll", "reg", "or"}
SKIP = {"epoch", "loss", "learning_rate", "grad_norm", "step", "total_flos", "total_steps", "percentage",
        "elapsed_time", "remaining_time", "runtime", "samples_per_second", "steps_per_second"}
SUMMARY = {"train_loss", "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos"}


@dataclass(frozen=True)
class TrainPoint:
    step: int
    loss: float
    epoch: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None


@dataclass(frozen=True)
class EvalPoint:
    step: int
    loss: float
    epoch: float | None = None


def _channel(key: str) -> str | None:
    m = CHANNEL.match(key)
    if not m:
        return None
    name = m.group("a") or m.group("b")
    if name in NOT_CHANNELS or name.split("_")[0] in {"eval", "predict", "test", "val"}:
        return None
    return name


@dataclass(frozen=True)
class TrainingLog:
    """A training run's log and its readings (see the module docstring)."""

    source: str
    format: str  # "trainer_state" | "llamafactory" | "tensorboard" | "csv" | "jsonl" | "probe_demo"
    train: tuple[TrainPoint, ...]
    eval: tuple[EvalPoint, ...] = ()
    channels: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    other: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    nonfinite: tuple[int, ...] = ()  # steps whose logged loss was NaN or infinite (left out)
    steps_per_epoch: float | None = None
    rules: Rules = Rules()
    findings: tuple[Finding, ...] = ()

    # -- the series -----------------------------------------------------------------------

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(p.step for p in self.train)

    @property
    def losses(self) -> tuple[float, ...]:
        return tuple(p.loss for p in self.train)

    @property
    def epochs(self) -> tuple[float | None, ...]:
        """Each train point's fractional epoch (from the log, else step / steps_per_epoch)."""
        return tuple(p.epoch if p.epoch is not None else
                     (p.step / self.steps_per_epoch if self.steps_per_epoch else None) for p in self.train)

    @property
    def boundaries(self) -> tuple[int, ...]:
        """The first logged step of each epoch after the first."""
        epochs = self.epochs
        if any(e is None for e in epochs):
            return ()
        idx = [epoch_index(e) for e in epochs]
        return tuple(self.train[i].step for i in range(1, len(idx)) if idx[i] != idx[i - 1])

    @property
    def n_epochs(self) -> float | None:
        epochs = [e for e in self.epochs if e is not None]
        return max(epochs) if epochs else None

    def epoch_means(self) -> list[tuple[int, int, int, float]]:
        """(epoch index from 0, first step, last step, mean train loss) of each epoch logged."""
        epochs = self.epochs
        if any(e is None for e in epochs):
            return []
        groups: dict[int, list[TrainPoint]] = {}
        for p, e in zip(self.train, epochs):
            groups.setdefault(epoch_index(e), []).append(p)
        return [(e, ps[0].step, ps[-1].step, sum(p.loss for p in ps) / len(ps)) for e, ps in sorted(groups.items())]

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "warning")

    def finding(self, rule: str) -> Finding | None:
        return next((f for f in self.findings if f.rule == rule), None)

    def reread(self, rules: Rules | None = None, **changes) -> "TrainingLog":
        """The same log read with other rule parameters: ``log.reread(step_ratio=2)``."""
        rules = replace(rules or self.rules, **changes)
        log = replace(self, rules=rules)
        return replace(log, findings=_findings(log))

    # -- views and data --------------------------------------------------------------------

    def figure(self):
        """Plotly: train/eval loss over steps, epoch bands, learning rate, findings marked."""
        return loss_figure(self)

    def __str__(self) -> str:
        return training_text(self)

    def _repr_html_(self) -> str:
        return training_html(self)

    def to_dict(self) -> dict:
        return {"source": self.source, "format": self.format,
                "train": [[p.step, p.loss, p.epoch, p.learning_rate, p.grad_norm] for p in self.train],
                "eval": [[p.step, p.loss, p.epoch] for p in self.eval],
                "channels": {k: [list(x) for x in v] for k, v in self.channels.items()},
                "other": {k: [list(x) for x in v] for k, v in self.other.items()},
                "summary": dict(self.summary), "nonfinite": list(self.nonfinite),
                "steps_per_epoch": self.steps_per_epoch, "rules": self.rules.to_dict(),
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingLog":
        series = lambda v: {k: tuple((int(s), float(x)) for s, x in pts) for k, pts in v.items()}  # noqa: E731
        return cls(str(d["source"]), str(d["format"]),
                   tuple(TrainPoint(int(s), float(l), e, lr, g) for s, l, e, lr, g in d["train"]),
                   tuple(EvalPoint(int(s), float(l), e) for s, l, e in d.get("eval", ())),
                   series(d.get("channels", {})), series(d.get("other", {})),
                   {k: float(v) for k, v in d.get("summary", {}).items()}, tuple(d.get("nonfinite", ())),
                   d.get("steps_per_epoch"), Rules.from_dict(d.get("rules", {})),
                   tuple(Finding.from_dict(f) for f in d.get("findings", ())))


def _findings(log: TrainingLog) -> tuple[Finding, ...]:
    found = read_findings(log, log.rules)
    if log.nonfinite:
        found += (Finding("nonfinite_loss", "warning", f"the loss is NaN or infinite at {len(log.nonfinite)} "
                          f"step(s), first at step {log.nonfinite[0]} (left out of the curve)",
                          {"steps": list(log.nonfinite)}, log.nonfinite[:20]),)
    return found


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _last_by_step(items):
    return tuple(sorted({p.step: p for p in items}.values(), key=lambda p: p.step))


def from_records(records: list[dict], *, source: str, format: str, steps_per_epoch: float | None = None,
                 rules: Rules | None = None) -> TrainingLog:
    """A TrainingLog from normalized records (``{"step": int, "loss": float, ...}``)."""
    loss_key = "loss" if any("loss" in r for r in records) else (
        "train_loss" if sum("train_loss" in r for r in records) >= 2 else None)
    if loss_key is None:
        seen = sorted({k for r in records for k in r} - {"step"})
        raise TrainingLogError(f"{source}: no train loss in the {format} log ({len(records)} records); looked for "
                               f"'loss' (also 'train/loss', 'train_loss'); it has: {', '.join(seen) or 'nothing'}")
    train, evals, nonfinite = [], [], []
    channels: dict[str, dict[int, float]] = {}
    other: dict[str, dict[int, float]] = {}
    summary: dict[str, float] = {}
    for r in records:
        step = r["step"]
        if loss_key in r:
            if math.isfinite(r[loss_key]):
                train.append(TrainPoint(step, r[loss_key], *(_finite(r.get(k)) for k in ("epoch", "learning_rate",
                                                                                         "grad_norm"))))
            else:
                nonfinite.append(step)
        if "eval_loss" in r and math.isfinite(r["eval_loss"]):
            evals.append(EvalPoint(step, r["eval_loss"], _finite(r.get("epoch"))))
        for key, value in r.items():
            if key in SUMMARY and loss_key == "loss":
                summary[key] = value
            elif key in SKIP or key == loss_key or key == "eval_loss" or not math.isfinite(value):
                continue
            elif (name := _channel(key)) is not None:
                channels.setdefault(name, {})[step] = value
            elif not any(key.endswith(s) for s in SKIP):
                other.setdefault(key, {})[step] = value
    if not train:
        raise TrainingLogError(f"{source}: every train loss in the log is NaN or infinite")
    log = TrainingLog(
        source=source, format=format, train=_last_by_step(train), eval=_last_by_step(evals),
        channels={k: tuple(sorted(v.items())) for k, v in sorted(channels.items())},
        other={k: tuple(sorted(v.items())) for k, v in sorted(other.items())},
        summary=summary, nonfinite=tuple(sorted(set(nonfinite))), steps_per_epoch=steps_per_epoch,
        rules=rules or Rules())
    return replace(log, findings=_findings(log))


def training_log(path, *, steps_per_epoch: float | None = None, rules: Rules | None = None,
                 **rule_changes) -> TrainingLog:
    """Read a training log (a run folder or one file) and its readings.

    Args:
        path: a run folder (``trainer_state.json``, ``checkpoint-*/``, ``trainer_log.jsonl``,
            ``runs/*/events.out.tfevents.*``) or one log file (those, a ``.csv`` or ``.jsonl``).
        steps_per_epoch: where the log has no epoch column, the epoch of step s is
            s / steps_per_epoch (needed for the stepped-loss rule).
        rules, rule_changes: the rules' parameters (:class:`probe.train.readings.Rules`),
            e.g. ``training_log(run, low_loss=0.3, step_ratio=2)``.

    Raises:
        TrainingLogError (a ValueError) naming the file and what was looked for: an empty folder,
        an unrecognised file, a log with no loss.
    """
    if steps_per_epoch is not None and not steps_per_epoch > 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch!r}")
    rules = replace(rules or Rules(), **rule_changes)
    fmt, files, records = read_records(path)
    source = str(files[0] if len(files) == 1 else Path(path))
    if not records:
        raise TrainingLogError(f"{source}: the {fmt} log has no entries; looked for {LOOKED_FOR}")
    return from_records(records, source=source, format=fmt, steps_per_epoch=steps_per_epoch, rules=rules)


register(TrainingLog, default_name="training_log", section=training_section)
