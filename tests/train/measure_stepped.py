"""How often the stepped-loss rule fires on constructed curves, with and without a step (not a test).

    python tests/train/measure_stepped.py            # the README's table (about a minute)

Each curve: 4 epochs x 20 steps, loss 2.0 - 0.005 per step, minus ``drop`` at each epoch start,
plus Gaussian noise; 200 seeds per cell.
"""

from __future__ import annotations

import random

from probe.train.log import from_records
from probe.train.readings import Rules

SPE, EPOCHS, SEEDS = 20, 4, 200


def curve(seed: int, drop: float, noise: float, slope: float = -0.005) -> list[dict]:
    rng = random.Random(seed)
    return [{"step": s, "loss": 2.0 + slope * (s - 1) - drop * ((s - 1) // SPE) + rng.gauss(0, noise),
             "epoch": s / SPE} for s in range(1, EPOCHS * SPE + 1)]


def flagged(drop: float, noise: float, rules: Rules) -> int:
    return sum(from_records(curve(seed, drop, noise), source="constructed", format="jsonl", rules=rules)
               .finding("stepped_loss").level == "warning" for seed in range(SEEDS))


if __name__ == "__main__":
    for z in (Rules().step_z, 3.0):
        rules = Rules(step_z=z)
        for noise in (0.01, 0.03, 0.05):
            cells = [f"step {drop}: {flagged(drop, noise, rules)}/{SEEDS}" for drop in (0.0, 0.1, 0.2)]
            print(f"step_z={z} noise {noise}: " + ", ".join(cells))
