"""What a model's forward really supports, checked once on a few tokens, never guessed from names.

probe batches with left padding (an attention mask and position ids) and generates with a KV
cache. A model whose forward ignores the mask (RWKV) or whose cache does not continue a
sequence exactly (some recurrent hybrids) would give wrong numbers there. Before the first
padded batch and the first generation, probe compares, on 4 tokens:

* ``padding``: a row left-padded in a batch against the row alone;
* ``cache``: a cached step against a full forward over the same tokens;
* ``padded-cache``: a cached step of a left-padded batch against the short row alone (batched
  generation; MiniMax's cache sizes its masks wrong there);
* ``feed``: two tokens fed at once on a cache against a full forward (Jamba restarts its state
  space from zero there, MiniMax's masks are wrong): where it fails, probe feeds look-ahead
  tokens (watched strings, scores on the prefill) one at a time instead, which is exact;
* ``select``: cache rows selected, reordered and copied (``reorder_cache``: finished rows leaving
  a generation batch, several samples continuing one prefill), then a cached step, against
  each row alone (MiniMax keeps its linear-attention state beside the cache's layers, where
  ``reorder_cache`` does not reach: rows mixed up, or a tensor-size error). Where it fails,
  finished rows stay in the batch and each sample is prefilled as a row of its own, which is
  exact;
* ``rollback``: tokens fed inside :func:`probe.engine.forward.lookahead`, then a step on the
  cache it gave back, against a full forward (a cache that keeps states probe does not know
  how to put back).

A mismatch (or an error) makes that feature refuse with :class:`UnsupportedModelError`, which
names the model type and the feature: an error, never a wrong number.
"""

from __future__ import annotations

import torch
from ..core.engines import WeightsNotLoaded
from .forward import NonFiniteLogitsError, _close, feed_on_cache, forward, left_pad


class UnsupportedModelError(ValueError):
    """This model's forward cannot do what the asked feature needs (named in the message)."""


NEEDS = {
    "padding": "batches of different lengths (left padding with an attention mask: score_many, "
               "batched generation and diagnose batches)",
    "cache": "generation with a KV cache (generate, force, watch, diagnose)",
    "padded-cache": "cached steps of a left-padded batch (batched generation and diagnose batches)",
    "feed": "several tokens fed at once on a cache",
    "rollback": "tokens fed on a cache and taken back out (watched strings)",
    "select": "rows of a cache selected, reordered or copied",
}


def _family(lm) -> str:
    cfg = lm.model.config
    cfg = getattr(cfg, "get_text_config", lambda: cfg)()
    inner = getattr(lm.model, "get_base_model", lambda: lm.model)()
    return f"{getattr(cfg, 'model_type', '?')} ({type(inner).__name__})"


def _probe_ids(lm) -> list[int]:
    ids = list(lm.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"])[:4]
    return ids if len(ids) == 4 else [lm.pad_id] * 4


@torch.no_grad()
def _padding_ok(lm) -> bool:
    ids = _probe_ids(lm)
    x, mask = left_pad([ids, ids[:2]], lm.pad_id, lm.device)
    batched, _ = forward(lm, x, mask, keep=1)
    x1, m1 = left_pad([ids[:2]], lm.pad_id, lm.device)
    alone, _ = forward(lm, x1, m1, keep=1)
    return _close(batched.last()[1:2], alone.last())


@torch.no_grad()
def _cache_ok(lm) -> bool:
    ids = _probe_ids(lm)
    x, mask = left_pad([ids], lm.pad_id, lm.device)
    whole, _ = forward(lm, x, mask, keep=1)
    _, past = forward(lm, x[:, :3], mask[:, :3], keep=1, cache=True)
    if past is None:
        return False
    step, _ = forward(lm, x[:, 3:], mask, keep=1, past=past, pos=torch.tensor([[3]], device=x.device))
    return _close(step.last(), whole.last())


@torch.no_grad()
def _full_last(lm, ids: list[int]) -> torch.Tensor:
    x, m = left_pad([ids], lm.pad_id, lm.device)
    out, _ = forward(lm, x, m, keep=1)
    return out.last()[0]


@torch.no_grad()
def _padded_cache_ok(lm) -> bool:
    ids = _probe_ids(lm)
    x, mask = left_pad([ids[:3], ids[:1]], lm.pad_id, lm.device)
    _, past = forward(lm, x, mask, keep=1, cache=True)
    if past is None:
        return False
    mask2 = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    step, _ = forward(lm, torch.tensor([[ids[3]], [ids[1]]], device=lm.device), mask2, keep=1, past=past,
                      pos=torch.tensor([[3], [1]], device=lm.device))
    return _close(step.last()[1], _full_last(lm, ids[:2])) and _close(step.last()[0], _full_last(lm, ids))


def _prefill_two(lm, ids: list[int]):
    """(mask, cache) after the first two probe tokens; the cache is None where the model keeps none."""
    x, mask = left_pad([ids[:2]], lm.pad_id, lm.device)
    _, past = forward(lm, x, mask, keep=1, cache=True)
    return mask, past


@torch.no_grad()
def _feed_ok(lm) -> bool:
    ids = _probe_ids(lm)
    mask, past = _prefill_two(lm, ids)
    if past is None:
        return False
    out, _ = forward(lm, torch.tensor([ids[2:4]], device=lm.device), torch.ones_like(mask.repeat(1, 2)),
                     keep=2, past=past, pos=torch.tensor([[2, 3]], device=lm.device), lazy=False)
    rows = out.materialize()[0]
    return _close(rows[0], _full_last(lm, ids[:3])) and _close(rows[1], _full_last(lm, ids))


@torch.no_grad()
def _select_ok(lm) -> bool:
    ids = _probe_ids(lm)
    rows = [ids[:3], [ids[1], ids[2], ids[0]], [ids[2], ids[0], ids[1]]]  # one length: no padding
    x, mask = left_pad(rows, lm.pad_id, lm.device)
    _, past = forward(lm, x, mask, keep=1, cache=True)
    if past is None or not hasattr(past, "reorder_cache"):
        return False
    index = [2, 0, 0]  # row 1 leaves, row 2 moves up, row 0 is copied
    past.reorder_cache(torch.tensor(index, device=lm.device))
    step, _ = forward(lm, torch.tensor([[ids[3]]] * 3, device=lm.device), torch.ones_like(mask[:, :1]).repeat(1, 4),
                      keep=1, past=past, pos=torch.tensor([[3]] * 3, device=lm.device))
    return all(_close(step.last()[b], _full_last(lm, rows[i] + [ids[3]])) for b, i in enumerate(index))


@torch.no_grad()
def _rollback_ok(lm) -> bool:
    ids = _probe_ids(lm)
    mask, past = _prefill_two(lm, ids)  # its own cache: the look-ahead below writes into it
    if past is None:
        return False
    feed_on_cache(lm, [[ids[3], ids[2]]], past, mask, torch.tensor([1], device=lm.device),
                  one_by_one=not supports(lm, "feed"))
    step, _ = forward(lm, torch.tensor([[ids[2]]], device=lm.device), torch.ones_like(mask[:, :1]).repeat(1, 3),
                      keep=1, past=past, pos=torch.tensor([[2]], device=lm.device))
    return _close(step.last()[0], _full_last(lm, ids[:3]))


# Known transformers bugs that 4 tokens cannot show (the error is at rounding level there and
# grows with the state): model_type -> {need: why}. Refused up front, with the reason.
KNOWN_INEXACT = {
    "zamba2": {"cache": "its cached decode step skips the time_step_min clamp of the state-space "
                        "step size that the full forward applies (transformers' Zamba2MambaMixer), "
                        "so cached logits drift from the full forward's (2.7e-4 nats after a few "
                        "tokens on a tiny model)"},
}


def _model_type(lm) -> str:
    cfg = lm.model.config
    return getattr(getattr(cfg, "get_text_config", lambda: cfg)(), "model_type", "?")


_CHECKS = {"padding": _padding_ok, "cache": _cache_ok, "padded-cache": _padded_cache_ok,
           "feed": _feed_ok, "rollback": _rollback_ok, "select": _select_ok}


def supports(lm, need: str) -> bool:
    """Whether ``lm`` does ``need`` (a key of :data:`NEEDS`) exactly; checked once per model.

    Raises :class:`probe.engine.forward.NonFiniteLogitsError` where the model's logits are NaN
    and :class:`probe.WeightsNotLoaded` where it has no weights (that is what is wrong, not the
    family); neither is remembered."""
    memo = lm.model.__dict__.setdefault("_probe_supports", {})
    known = KNOWN_INEXACT.get(_model_type(lm), {}).get(need)
    if known and need not in memo:
        memo[need], memo[f"{need}-error"] = False, known
    if need not in memo:
        try:
            with lm.active():
                memo[need] = bool(_CHECKS[need](lm))
        except (NonFiniteLogitsError, WeightsNotLoaded):
            raise
        except Exception as err:  # noqa: BLE001 - any failure means: not supported
            memo[need] = False
            memo[f"{need}-error"] = f"{type(err).__name__}: {str(err)[:200]}"
    return memo[need]


def feeds_one_by_one(lm) -> bool:
    """Whether look-ahead tokens must be fed one at a time (``feed`` failed on this model)."""
    return not supports(lm, "feed")


def require(lm, need: str, feature: str) -> None:
    """Raise UnsupportedModelError if ``lm`` cannot do ``need`` (a key of :data:`NEEDS`) exactly."""
    if not supports(lm, need):
        why = lm.model.__dict__["_probe_supports"].get(f"{need}-error")
        raise UnsupportedModelError(
            f"{_family(lm)} cannot be used for {feature}: probe needs {NEEDS[need]}, and this "
            f"model's forward does not reproduce its own numbers that way"
            + (f" ({why})" if why else " (checked on 4 tokens)")
            + "; probe refuses rather than report wrong numbers. Score one sequence at a time "
            "(probe.score) instead.")
