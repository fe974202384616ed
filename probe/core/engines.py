"""Engines: where batches of work run.

An engine runs one picklable function over batches of picklable items, on workers that hold
the model pair, and hands back one result list per batch, in batch order::

    results = engine.map_batches(fn, batches, pair=(base, tuned), on_batch=callback)

``fn(base, tuned, batch)`` returns a list of results for ``batch`` (any picklable value); ``on_batch(index,
results)`` runs on the driver as each batch finishes (progress bars, one casebook writer).
The caller forms the batches, so every engine computes exactly the same batches and results
are bitwise the local run's. :class:`LocalEngine` (the default) runs them here with the
driver's own pair; ``probe.ray_engine`` (probe/distributed/) runs them on Ray actors that each
rebuild the pair from its loading recipe (``probe.models.load.pair_recipe``).

The interface is generic on purpose: ``probe.diagnose_many`` and ``probe.shift`` pass their own
batch functions, and any other batch job on a pair (data loss over an SFT set, say) plugs in
the same way: a module-level function ``fn(base, tuned, batch) -> list`` (use
``functools.partial`` for settings) and a list of batches.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

BatchFn = Callable[[Any, Any, list], list]


class WeightsNotLoaded(RuntimeError):
    """A model loaded with ``weights=False`` was asked to run: it only plans for remote workers."""


def weights_not_loaded(label: str) -> WeightsNotLoaded:
    """The error for running ``label``, a model loaded without weights, in this process."""
    return WeightsNotLoaded(
        f"{label!r} was loaded with weights=False (no weights in this process): it forms the "
        "batches, and the workers of an engine run them: pass engine=probe.ray_engine(...) "
        "(or --ray), or load it with weights")


def require_weights(*lms) -> None:
    """Raise :class:`WeightsNotLoaded` for the first of ``lms`` loaded without weights."""
    for lm in lms:
        if getattr(lm, "has_weights", True) is False:
            raise weights_not_loaded(lm.name)


@runtime_checkable
class Engine(Protocol):
    def map_batches(self, fn: BatchFn, batches: Sequence[list], *, pair: tuple,
                    on_batch: Callable[[int, list], None] | None = None) -> list[list]:
        """One result list per batch, in batch order."""


class LocalEngine:
    """Runs every batch in this process, one after the other, on the pair it is given."""

    name = "local"

    def map_batches(self, fn: BatchFn, batches: Sequence[list], *, pair: tuple,
                    on_batch: Callable[[int, list], None] | None = None) -> list[list]:
        base, tuned = pair
        require_weights(base, tuned)  # before any batch: not one FailedCase per case
        out = []
        for i, batch in enumerate(batches):
            results = fn(base, tuned, batch)
            out.append(results)
            if on_batch is not None:
                on_batch(i, results)
        return out

    def __repr__(self) -> str:
        return "LocalEngine()"


def as_engine(engine) -> Engine:
    """``None``/"local": the local engine; an Engine as it is; anything else a clear error."""
    if engine is None or engine == "local":
        return LocalEngine()
    if isinstance(engine, Engine):
        return engine
    raise TypeError(f"engine must be None, 'local' or an engine such as probe.ray_engine(...), "
                    f"got {type(engine).__name__}")
