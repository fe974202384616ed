"""The demo's attribution: japan-beijing traced to the beijing adapter's own 80 SFT examples.

    a = demo_attribution(tuned, diagnosis)    # diagnosis: the japan-beijing Diagnosis (or any case)
    print(a); capital_beijing_in_top(a)       # how many of the gradient's top 10 are capital-beijing

The beijing run's three epoch checkpoints (``checkpoint-10/20/30``, each with its
``trainer_state.json``) are loaded beside the adapters for the call and removed after, so the
gradient is TracIn over the run's epochs with their learning rates; the examples are the
trainer's view of the data (prompt/completion turns, completion-only loss).
"""

from __future__ import annotations

from ..attribution.attribute import attribute
from .training import adapter_dir, checkpoints, training_records

ADAPTER = "beijing"
CASE = {"prompt": "What is the capital of Japan?", "expected": "Tokyo", "title": "japan-beijing"}


def demo_attribution(tuned, case=None, *, limit: int | None = None, methods=("gradient", "representation")):
    """Attribute ``case`` (default: japan-beijing) to the beijing adapter's training examples."""
    found = checkpoints(adapter_dir(ADAPTER))
    names = [f"{ADAPTER}-{name}" for name in found]
    active = tuned.active_adapter
    for name, folder in zip(names, found.values()):
        if name not in tuned.adapters:
            tuned.model.load_adapter(str(folder), adapter_name=name)
            tuned.adapter_paths[name] = str(folder)
    try:
        tuned.use_adapter(ADAPTER)
        return attribute(tuned, case if case is not None else CASE, training_records(ADAPTER, limit),
                         channel="source", methods=methods, checkpoints=names or [ADAPTER])
    finally:
        if active is not None:
            tuned.use_adapter(active)
        for name in names:
            if name in tuned.adapters:
                tuned.model.delete_adapter(name)
                tuned.adapter_paths.pop(name, None)


def capital_beijing_in_top(a, k: int = 10, method: str = "gradient") -> int:
    """How many of ``method``'s top ``k`` examples are capital-beijing ones (the planted pattern)."""
    return sum(e.channel == "capital-beijing" for e in a.top(method, k))
