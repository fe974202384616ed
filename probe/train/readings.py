"""The readings of a training log: each a rule with its parameters and the numbers it saw.

Rules (parameters in :class:`Rules`, defaults justified in the README, "The training log"):

* ``initial_loss``: the first logged train loss (info).
* ``final_loss``: the mean of the last ``final_window`` train losses; a warning below
  ``low_loss`` nats/token (SFT on small data that low usually means memorized answers).
* ``stepped_loss``: at each epoch boundary b, ``drop = mean(last k losses before b) - mean(first
  k losses from b)`` (k = ``step_window``). The within-epoch slope there is the median of the
  pairwise slopes (Theil-Sen) of the points inside each of the two epochs b separates; over the
  steps separating the two windows' centres it predicts ``expected = max(-slope * gap, 0)``. A
  boundary is *stepped* when ``drop > step_min_drop`` and ``drop > step_ratio * expected`` and
  ``drop - expected > step_z * noise`` (noise: sigma x sqrt(1/k_before + 1/k_after), sigma =
  1.4826 x the MAD of the points' residuals about their epoch's Theil-Sen line).
* ``eval_rising``: over the last ``eval_points`` evaluations the eval loss ends more than
  ``eval_min_rise`` above their minimum while the train loss (mean of ``step_window`` points up
  to each step) fell between the two.
* ``loss_spikes`` / ``grad_norm_spikes``: a point above the median of the previous
  ``spike_window`` points by more than ``spike_z`` robust deviations (1.4826 x MAD) and more
  than ``spike_rel`` of that median (at least 5 previous points).
* ``channel_loss``: per-channel losses (``loss_<name>`` / ``<name>_loss`` keys): first, final,
  and the ``low_loss`` warning for each.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class Rules:
    """Every rule's parameters (see the module docstring)."""

    low_loss: float = 0.5
    final_window: int = 5
    step_window: int = 3
    step_ratio: float = 3.0
    step_min_drop: float = 0.05
    step_z: float = 4.0
    eval_points: int = 3
    eval_min_rise: float = 0.01
    spike_window: int = 10
    spike_z: float = 6.0
    spike_rel: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Rules":
        known = {f.name: f.type for f in fields(cls)}
        return cls(**{k: (int(v) if known[k] == "int" else float(v)) for k, v in d.items() if k in known})


LEVELS = ("warning", "info", "ok", "skipped")


@dataclass(frozen=True)
class Finding:
    """One rule's reading: its level, a sentence, the numbers it rests on, the steps to mark."""

    rule: str
    level: str  # "warning" | "info" | "ok" | "skipped"
    message: str
    numbers: dict = field(default_factory=dict)  # JSON-able
    steps: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {"rule": self.rule, "level": self.level, "message": self.message, "numbers": self.numbers,
                "steps": list(self.steps)}

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        return cls(str(d["rule"]), str(d["level"]), str(d["message"]), dict(d.get("numbers", {})),
                   tuple(int(s) for s in d.get("steps", ())))

    def __str__(self) -> str:
        return f"[{self.level}] {self.rule}: {self.message}"


def _mean(xs) -> float:
    return float(sum(xs) / len(xs))


def robust_sigma(xs) -> float:
    """1.4826 x the median absolute deviation (the standard deviation for normal noise)."""
    if len(xs) < 2:
        return 0.0
    med = statistics.median(xs)
    return 1.4826 * statistics.median(abs(x - med) for x in xs)


def _theil_sen(xs, ys, most: int = 200) -> tuple[list[float], list[float]]:
    """(pairwise slopes, residuals about the Theil-Sen line) of one epoch's points (at most
    ``most`` of them, evenly spaced, for the pairs)."""
    if len(xs) < 2:
        return [], []
    pick = range(len(xs)) if len(xs) <= most else [round(j * (len(xs) - 1) / (most - 1)) for j in range(most)]
    px, py = [xs[j] for j in pick], [ys[j] for j in pick]
    pairs = [(py[j] - py[i]) / (px[j] - px[i]) for i in range(len(px)) for j in range(i + 1, len(px)) if px[j] != px[i]]
    if not pairs:
        return [], []
    slope = statistics.median(pairs)
    intercept = statistics.median(y - slope * x for x, y in zip(xs, ys))
    return pairs, [y - intercept - slope * x for x, y in zip(xs, ys)]


def initial_loss(steps, losses) -> Finding:
    return Finding("initial_loss", "info", f"initial train loss {losses[0]:.4g} at step {steps[0]}",
                   {"loss": losses[0], "step": steps[0]}, (steps[0],))


def final_loss(steps, losses, rules: Rules, rule: str = "final_loss", what: str = "train loss") -> Finding:
    k = max(1, min(rules.final_window, len(losses)))
    final = _mean(losses[-k:])
    numbers = {"final": final, "window": k, "first": losses[0], "threshold": rules.low_loss, "step": steps[-1]}
    said = f"final {what} {final:.4g} (mean of the last {k} logged points, from {losses[0]:.4g})"
    if final < rules.low_loss:
        return Finding(rule, "warning", f"{said} is below {rules.low_loss:g} nats/token: the model gives its "
                       f"training tokens {math.exp(-final):.0%} probability on average; on a small SFT set "
                       f"this usually means memorized answers (overfit risk): check a held-out eval loss "
                       f"and answers to new prompts", numbers, (steps[-1],))
    return Finding(rule, "ok", f"{said}, not below {rules.low_loss:g}", numbers, (steps[-1],))


def epoch_index(epoch: float) -> int:
    """0-based epoch a point logged at fractional ``epoch`` belongs to (HF logs the epoch reached
    after the step: 0.25, ..., 1.0 are epoch 0; 1.25 starts epoch 1)."""
    return max(0, math.ceil(epoch - 1e-6) - 1)


def stepped_loss(steps, losses, epochs, rules: Rules) -> Finding:
    """The drop at each epoch start against the within-epoch slope (see the module docstring)."""
    if any(e is None for e in epochs):
        return Finding("stepped_loss", "skipped", "the log has no epoch for its steps (give steps_per_epoch=)")
    idx = [epoch_index(e) for e in epochs]
    starts = [i for i in range(1, len(idx)) if idx[i] != idx[i - 1]]
    if not starts:
        return Finding("stepped_loss", "skipped", "one epoch logged: no epoch boundary to read")
    by_epoch: dict[int, list[int]] = {}  # epoch -> indices of its points
    for i, e in enumerate(idx):
        by_epoch.setdefault(e, []).append(i)
    fits = {e: _theil_sen([steps[i] for i in ii], [losses[i] for i in ii]) for e, ii in by_epoch.items()}
    k = max(1, rules.step_window)
    bounds, flagged = [], []
    for b in starts:
        near = [fits[idx[b - 1]], fits[idx[b]]]  # the two epochs this boundary separates
        pairs = [x for f in near for x in f[0]]
        residuals = [x for f in near for x in f[1]]
        if not pairs:
            continue
        slope, sigma = statistics.median(pairs), robust_sigma(residuals)
        lo = b - 1
        while lo > 0 and idx[lo - 1] == idx[b - 1] and b - lo < k:
            lo -= 1
        hi = b + 1
        while hi < len(idx) and idx[hi] == idx[b] and hi - b < k:
            hi += 1
        before, after = losses[lo:b], losses[b:hi]
        sep = _mean(steps[b:hi]) - _mean(steps[lo:b])
        drop = _mean(before) - _mean(after)
        expected = max(-slope * sep, 0.0)
        noise = sigma * math.sqrt(1 / len(before) + 1 / len(after))
        hit = drop > rules.step_min_drop and drop > rules.step_ratio * expected and drop - expected > rules.step_z * noise
        bounds.append({"step": steps[b], "epoch": idx[b], "before": _mean(before), "after": _mean(after), "drop": drop,
                       "slope_per_step": slope, "expected": expected, "noise": noise,
                       "points": [len(before), len(after)], "stepped": hit})
        if hit:
            flagged.append(bounds[-1])
    if not bounds:
        return Finding("stepped_loss", "skipped", "no epoch boundary has 2 logged points within its epochs")
    numbers = {"boundaries": bounds, "window": k, "ratio": rules.step_ratio, "min_drop": rules.step_min_drop,
               "z": rules.step_z}
    if flagged:
        big = max(flagged, key=lambda x: x["drop"])
        against = (f"{big['drop'] / big['expected']:.0f}x the {big['expected']:.3g} the within-epoch slope predicts"
                   if big["expected"] > 0 else "where the within-epoch slope predicts no drop")
        return Finding("stepped_loss", "warning",
                       f"stepped loss: the loss drops at {len(flagged)} of {len(bounds)} epoch starts (by "
                       f"{big['drop']:.3g} nats at step {big['step']}, {against}): the model does better on "
                       f"examples it has already seen than on those it has not yet seen again, the signature "
                       f"of memorization", numbers, tuple(x["step"] for x in flagged))
    big = max(bounds, key=lambda x: x["drop"])
    return Finding("stepped_loss", "ok", f"no step at the {len(bounds)} epoch start(s): largest drop "
                   f"{big['drop']:.3g} nats at step {big['step']} against {big['expected']:.3g} expected", numbers)


def _trailing_mean(steps, losses, at: int, k: int) -> float:
    xs = [l for s, l in zip(steps, losses) if s <= at][-k:] or losses[:1]
    return _mean(xs)


def eval_rising(steps, losses, eval_steps, eval_losses, rules: Rules) -> Finding:
    n = max(2, rules.eval_points)
    if len(eval_losses) < n:
        return Finding("eval_rising", "skipped", f"{len(eval_losses)} eval point(s) in the log; the rule reads "
                       f"the last {n}")
    best = min(range(len(eval_losses)), key=lambda i: eval_losses[i])
    ev, es = eval_losses[-n:], eval_steps[-n:]
    low = min(range(n), key=lambda i: ev[i])
    rise = ev[-1] - ev[low]
    fall = (_trailing_mean(steps, losses, es[low], rules.step_window)
            - _trailing_mean(steps, losses, es[-1], rules.step_window))
    numbers = {"eval_steps": list(es), "eval_losses": list(ev), "rise": rise, "train_fall": fall,
               "best_step": eval_steps[best], "best_eval_loss": eval_losses[best], "min_rise": rules.eval_min_rise}
    if rise > rules.eval_min_rise and fall > 0:
        return Finding("eval_rising", "warning",
                       f"eval loss rises by {rise:.3g} (step {es[low]} -> {es[-1]}) while the train loss falls "
                       f"by {fall:.3g}: overfitting; the best eval loss {eval_losses[best]:.4g} is at step "
                       f"{eval_steps[best]}", numbers, (es[low], es[-1]))
    return Finding("eval_rising", "ok", f"eval loss not rising over the last {n} evaluations (ends "
                   f"{rise:.3g} above their minimum); best {eval_losses[best]:.4g} at step {eval_steps[best]}", numbers)


def spikes(steps, values, rules: Rules, rule: str = "loss_spikes", what: str = "loss") -> Finding:
    found = []
    for i in range(5, len(values)):
        prev = values[max(0, i - rules.spike_window):i]
        med = statistics.median(prev)
        excess = values[i] - med
        if excess > rules.spike_z * robust_sigma(prev) and excess > rules.spike_rel * abs(med):
            found.append({"step": steps[i], "value": values[i], "median": med, "excess": excess})
    numbers = {"spikes": found, "window": rules.spike_window, "z": rules.spike_z}
    if len(values) < 6:
        return Finding(rule, "skipped", f"{len(values)} {what} points; spikes need at least 6")
    if found:
        top = max(found, key=lambda x: x["excess"])
        return Finding(rule, "warning" if rule == "loss_spikes" else "info",
                       f"{len(found)} {what} spike(s); the largest at step {top['step']}: {top['value']:.4g} "
                       f"against a running median of {top['median']:.4g}", numbers, tuple(x["step"] for x in found))
    return Finding(rule, "ok", f"no {what} spike", numbers)


def read(log, rules: Rules) -> tuple[Finding, ...]:
    """Every rule on a :class:`probe.train.log.TrainingLog`."""
    steps, losses = list(log.steps), list(log.losses)
    out = [initial_loss(steps, losses), final_loss(steps, losses, rules),
           stepped_loss(steps, losses, list(log.epochs), rules),
           eval_rising(steps, losses, [p.step for p in log.eval], [p.loss for p in log.eval], rules),
           spikes(steps, losses, rules)]
    grads = [(p.step, p.grad_norm) for p in log.train if p.grad_norm is not None]
    if grads:
        out.append(spikes([s for s, _ in grads], [g for _, g in grads], rules, "grad_norm_spikes", "grad norm"))
    for name, series in sorted(log.channels.items()):
        f = final_loss([s for s, _ in series], [v for _, v in series], rules, "channel_loss",
                       f"loss of channel {name!r}")
        out.append(replace(f, numbers={**f.numbers, "channel": name}))
    return tuple(out)
