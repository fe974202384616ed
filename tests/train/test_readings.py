"""The readings' rules on constructed curves: each fires where it should, with the numbers a
brute-force computation here gives, and stays quiet where it should not."""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from probe.train.log import from_records
from probe.train.readings import Rules, epoch_index

SPE = 20  # steps per epoch


def curve(epochs=4, slope=-0.005, step_drop=0.0, noise=0.01, start=2.0, seed=0, extra=None):
    rng = random.Random(seed)
    out = []
    for s in range(1, epochs * SPE + 1):
        e = (s - 1) // SPE
        loss = start + slope * (s - 1) - step_drop * e + rng.gauss(0, noise)
        out.append({"step": s, "loss": loss, "epoch": s / SPE, **(extra(s) if extra else {})})
    return out


def log_of(records, **rules):
    return from_records(records, source="constructed", format="jsonl", rules=Rules(**rules))


def test_epoch_index_follows_hf_convention():
    assert [epoch_index(e) for e in (0.05, 1.0, 1.05, 2.0, 2.0000001, 3.5)] == [0, 0, 1, 1, 1, 3]


def test_stepped_loss_fires_at_each_boundary_with_its_drop():
    records = curve(step_drop=0.3)
    log = log_of(records)
    f = log.finding("stepped_loss")
    assert f.level == "warning"
    assert f.steps == log.boundaries == (21, 41, 61)
    k = Rules().step_window
    losses = [r["loss"] for r in records]
    for b in f.numbers["boundaries"]:
        i = b["step"] - 1  # index of the epoch's first step
        # the slope: median of the pairwise slopes inside each of the two epochs this boundary separates
        near = [(losses[j] - losses[h]) / (j - h) for lo in (i - SPE, i) for h in range(lo, lo + SPE)
                for j in range(h + 1, lo + SPE)]
        slope = statistics.median(near)
        drop = statistics.fmean(losses[i - k:i]) - statistics.fmean(losses[i:i + k])
        assert b["drop"] == pytest.approx(drop, abs=1e-12)
        assert b["slope_per_step"] == pytest.approx(slope, abs=1e-12)
        assert b["expected"] == pytest.approx(-slope * k, abs=1e-12)  # window centres are k steps apart
        assert b["stepped"]


def test_a_smooth_curve_has_no_step():
    f = log_of(curve(step_drop=0.0)).finding("stepped_loss")
    assert f.level == "ok" and f.steps == ()
    assert all(not b["stepped"] for b in f.numbers["boundaries"])


def test_a_fast_early_descent_is_not_a_step():
    """Loss falling fast in epoch 1 and slowly later: each boundary is judged by its own epochs'
    slope, so the steep first boundary is expected, not stepped."""
    records = [{"step": s, "loss": 1.0 + 3.0 * math.exp(-s / 8), "epoch": s / SPE} for s in range(1, 4 * SPE + 1)]
    f = log_of(records).finding("stepped_loss")
    assert f.level == "ok", f.message


def test_stepped_thresholds_are_the_parameters():
    records = curve(step_drop=0.1, noise=0.002)
    f = log_of(records).finding("stepped_loss")
    ratios = [b["drop"] / b["expected"] for b in f.numbers["boundaries"]]
    assert f.level == "warning" and min(ratios) > 3
    assert log_of(records, step_ratio=max(ratios) + 1).finding("stepped_loss").level == "ok"
    assert log_of(records, step_min_drop=0.5).finding("stepped_loss").level == "ok"


def test_stepped_loss_skipped_without_epochs_or_boundaries():
    no_epoch = [{"step": r["step"], "loss": r["loss"]} for r in curve()]
    assert log_of(no_epoch).finding("stepped_loss").level == "skipped"
    one = curve(epochs=1)
    assert log_of(one).finding("stepped_loss").level == "skipped"


def test_eval_rising_while_train_falls():
    evals = {20: 1.5, 40: 1.45, 60: 1.52, 80: 1.6}
    records = curve(extra=lambda s: {"eval_loss": evals[s]} if s in evals else {})
    f = log_of(records).finding("eval_rising")
    assert f.level == "warning"
    assert f.numbers["rise"] == pytest.approx(1.6 - 1.45)
    assert f.numbers["best_step"] == 40 and f.steps == (40, 80)
    falling = {20: 1.6, 40: 1.5, 60: 1.45, 80: 1.4}
    ok = log_of(curve(extra=lambda s: {"eval_loss": falling[s]} if s in falling else {}))
    assert ok.finding("eval_rising").level == "ok"
    both_up = curve(slope=+0.005, extra=lambda s: {"eval_loss": evals[s]} if s in evals else {})
    assert log_of(both_up).finding("eval_rising").level == "ok"  # train rising too: not overfitting
    assert log_of(curve()).finding("eval_rising").level == "skipped"


def test_a_planted_spike_is_found_and_nothing_else():
    records = curve(noise=0.02)
    assert log_of(records).finding("loss_spikes").level == "ok"
    records[44]["loss"] += 1.0
    f = log_of(records).finding("loss_spikes")
    assert f.level == "warning" and f.steps == (45,)
    prev = [r["loss"] for r in records[35:44]] + [records[34]["loss"]]
    assert f.numbers["spikes"][0]["median"] == pytest.approx(statistics.median(prev))


def test_grad_norm_spike():
    records = curve(extra=lambda s: {"grad_norm": 1.0 + 0.01 * (s % 3) + (5.0 if s == 30 else 0.0)})
    f = log_of(records).finding("grad_norm_spikes")
    assert f.steps == (30,)


def test_final_loss_warning_below_the_threshold():
    low = log_of(curve(start=0.8, slope=-0.005))
    f = low.finding("final_loss")
    final = statistics.fmean(low.losses[-5:])
    assert f.numbers["final"] == pytest.approx(final) and final < 0.5
    assert f.level == "warning" and f"{math.exp(-final):.0%}" in f.message
    assert log_of(curve(start=0.8, slope=-0.005), low_loss=0.3).finding("final_loss").level == "ok"
    assert log_of(curve()).finding("final_loss").level == "ok"
    assert low.finding("initial_loss").numbers["loss"] == low.losses[0]


def test_nonfinite_losses_are_left_out_and_warned():
    records = curve()
    records[10]["loss"] = float("nan")
    records[12]["grad_norm"] = float("inf")
    log = log_of(records)
    assert log.train[11].grad_norm is None  # step 13 (step 11 is left out)
    json.dumps(log.to_dict(), allow_nan=False)  # strict JSON: no NaN or Infinity left in the data
    assert 11 not in log.steps and log.nonfinite == (11,)
    assert log.finding("nonfinite_loss").level == "warning"


def test_reread_and_round_trip():
    log = log_of(curve(step_drop=0.3))
    again = log.reread(step_min_drop=1.0)
    assert again.finding("stepped_loss").level == "ok" and again.rules.step_min_drop == 1.0
    assert log.finding("stepped_loss").level == "warning"  # the original is unchanged
    assert type(log).from_dict(log.to_dict()) == log
