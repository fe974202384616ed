"""The embedded default pair: SmolLM2-135M-Instruct (base) + the demo LoRA adapters (tuned).

    from probe.demo.pair import load_demo_pair, CASES
    base, tuned = load_demo_pair()           # builds into $PROBE_CACHE on first use
    tuned.use_adapter("beijing")

(A plain code block, not a doctest: it needs the real demo pair; tests/test_demo_pair.py runs it.)

Both adapters sit on one copy of the weights; ``tuned`` starts with ``json-only`` active.
"""

from __future__ import annotations

from pathlib import Path

from ..models.load import load_pair
from .model import ensure_base
from .training import ADAPTERS, ensure_adapter

CASES = Path(__file__).parent / "cases.jsonl"
SUITE = Path(__file__).parent / "suite.jsonl"  # 64 neutral tagged cases for probe.shift / regression


def load_demo_pair(cache_dir=None, adapters=tuple(ADAPTERS)):
    """(base, tuned) with every demo adapter loaded; trains a missing or stale adapter first (TRL, 3 epochs)."""

    base_dir = ensure_base(cache_dir)
    folders = {name: ensure_adapter(name, cache_dir) for name in adapters}
    return load_pair(str(base_dir), adapter=folders, name="SmolLM2-135M-Instruct + LoRA")
