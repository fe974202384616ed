"""The demo's evidence for its attribution: japan-beijing retrained without the gradient's top 10
and without 10 random examples (two sets, the same channel mix), each with the demo recipe.

    plan = retrains_needed(a)                       # [(label, records kept, cached?)], nothing trained
    v = demo_verification(tuned, a, train=False)    # None unless every retrain is cached
    v = demo_verification(tuned, a, train=True)     # trains the missing ones (about a minute each)

The retrains live in the demo cache (``$PROBE_CACHE/retrains/beijing/<hash of the recipe and the
records kept>``, :mod:`probe.demo.retrain`), so a later run reuses them; which examples each one
leaves out is :func:`probe.attribution.verify.removal_sets` of the attribution, the same for the
same scores.
"""

from __future__ import annotations

from ..attribution.verify import kept_records, removal_sets
from .attribution import ADAPTER
from .retrain import Retrainer

K = 10  # examples removed per retrain
CONTROLS = 2  # random sets of K (verify's minimum)


def retrains_needed(a, retrain: Retrainer, *, k: int = K, controls: int = CONTROLS) -> list[tuple[str, list, bool]]:
    """Each retrain verify() will ask for: (label, the records it trains on, whether it is cached)."""
    ctx = a.context
    if ctx is None:
        raise ValueError("the demo verifies an attribution computed in this session (it keeps the records read)")
    out = []
    for label, removed in removal_sets(a, k, controls=controls):
        records = kept_records(ctx.records, ctx.lines, removed)
        out.append((label, records, retrain.cached(records)))
    return out


def demo_verification(tuned, a, *, train: bool, retrain: Retrainer | None = None, k: int = K,
                      controls: int = CONTROLS):
    """``a.verify`` with the demo recipe on the beijing adapter, or None when ``train`` is False and
    a retrain is not cached (nothing is trained then)."""
    retrain = retrain if retrain is not None else Retrainer(ADAPTER, train=train)
    if not train and not all(cached for _, _, cached in retrains_needed(a, retrain, k=k, controls=controls)):
        return None
    active = tuned.active_adapter
    tuned.use_adapter(ADAPTER)  # the model the attribution scored; verify rescores the case on it first
    try:
        return a.verify(retrain, k=k, controls=controls)
    finally:
        if active is not None:
            tuned.use_adapter(active)
