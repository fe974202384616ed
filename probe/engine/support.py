"""What a model's forward really supports, checked once on a few tokens, never guessed from names.

probe batches with left padding (an attention mask and position ids) and generates with a KV
cache. A model whose forward ignores the mask (RWKV) or whose cache does not continue a
sequence exactly (some recurrent hybrids) would give wrong numbers there. Before the first
padded batch and the first generation, probe compares, on 4 tokens:

* ``padding``: a row left-padded in a batch against the row alone;
* ``cache``: a cached step against a full forward over the same tokens.

A mismatch (or an error) makes that feature refuse with :class:`UnsupportedModelError`, which
names the model type and the feature: an error, never a wrong number.
"""

from __future__ import annotations

import torch
from .forward import _close, forward, left_pad


class UnsupportedModelError(ValueError):
    """This model's forward cannot do what the asked feature needs (named in the message)."""


NEEDS = {
    "padding": "batches of different lengths (left padding with an attention mask: score_many, "
               "batched generation and diagnose batches)",
    "cache": "generation with a KV cache (generate, force, watch, diagnose)",
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


_CHECKS = {"padding": _padding_ok, "cache": _cache_ok}


def require(lm, need: str, feature: str) -> None:
    """Raise UnsupportedModelError if ``lm`` cannot do ``need`` ("padding" or "cache") exactly."""
    memo = lm.model.__dict__.setdefault("_probe_supports", {})
    if need not in memo:
        try:
            with lm.active():
                memo[need] = bool(_CHECKS[need](lm))
        except Exception as err:  # noqa: BLE001 - any failure means: not supported
            memo[need] = False
            memo[f"{need}-error"] = f"{type(err).__name__}: {str(err)[:200]}"
    if not memo[need]:
        why = memo.get(f"{need}-error")
        raise UnsupportedModelError(
            f"{_family(lm)} cannot be used for {feature}: probe needs {NEEDS[need]}, and this "
            f"model's forward does not reproduce its own numbers that way"
            + (f" ({why})" if why else " (checked on 4 tokens)")
            + "; probe refuses rather than report wrong numbers. Score one sequence at a time "
            "(probe.score) instead.")
