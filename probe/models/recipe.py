"""How a pair was loaded, so that another process can load the same pair.

``probe.load`` records its arguments on the LM (``LM.recipe``; None for an LM built from
in-memory objects); :func:`pair_recipe` turns a (base, tuned) pair into one picklable dict and
:func:`rebuild_pair` loads that pair again, e.g. in each worker of a distributed engine.
"""

from __future__ import annotations

import copy

from .load import load, load_pair


class NotRebuildable(ValueError):
    """The pair was built from in-memory objects: no other process can load it."""


def pair_recipe(base, tuned) -> dict:
    """``{"kind": "adapter", "load": {...}}`` for a ``load_pair(src, adapter=...)`` pair (one set
    of weights), ``{"kind": "two", "base": {...}, "tuned": {...}}`` for two checkpoints,
    ``{"kind": "one", "load": {...}, "side": ...}`` for one model passed as both (a sweep).

    Raises:
        NotRebuildable: either model was not loaded by ``probe.load``/``load_pair`` from a
            path or hub name (e.g. ``probe.load((model, tokenizer))``).
    """
    for role, lm in (("base", base), ("tuned", tuned)):
        if getattr(lm, "recipe", None) is None:
            raise NotRebuildable(
                f"the {role} model ({getattr(lm, 'name', lm)!r}) was built from in-memory objects, "
                "so a worker cannot load it again: save it (model.save_pretrained(folder), "
                "tokenizer.save_pretrained(folder)) and load the pair with probe.load_pair(folder, ...)")
    if base is tuned:  # one model (probe.sweep): the side of a LoRA pair it runs as
        side = "base" if base.adapter_enabled is False else "tuned"
        return {"kind": "one", "load": copy.deepcopy(base.recipe), "side": side}
    if base.model is tuned.model:
        if not tuned.recipe.get("adapter"):
            raise NotRebuildable("base and tuned share one model without an adapter: nothing to compare")
        return {"kind": "adapter", "load": copy.deepcopy(tuned.recipe)}
    return {"kind": "two", "base": copy.deepcopy(base.recipe), "tuned": copy.deepcopy(tuned.recipe)}


def rebuild_pair(recipe: dict):
    """The (base, tuned) pair a :func:`pair_recipe` describes, loaded here."""
    if recipe.get("kind") == "adapter":
        kwargs = dict(recipe["load"])
        source, adapter = kwargs.pop("source"), kwargs.pop("adapter")
        return load_pair(source, adapter=adapter, **kwargs)
    if recipe.get("kind") == "two":
        return load(**recipe["base"]), load(**recipe["tuned"])
    if recipe.get("kind") == "one":
        kwargs = dict(recipe["load"])
        if recipe["side"] == "base" and kwargs.get("adapter"):
            source, adapter = kwargs.pop("source"), kwargs.pop("adapter")
            lm, _ = load_pair(source, adapter=adapter, **kwargs)
        else:
            lm = load(**kwargs)
        return lm, lm
    raise ValueError(f"not a pair recipe: {recipe!r}")
