"""Batched forward passes that keep only the logits we need.

Sequences are always left-padded here (whatever the tokenizer's ``padding_side``), so every
row's last tokens line up at the right edge and ``logits_to_keep=K`` returns exactly the
positions to score. Padding is excluded by the attention mask and position ids are computed
from the mask, so a padded row gives the same numbers as the row alone.
"""

from __future__ import annotations

import inspect

import torch


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (batch, max_len), padding on the left."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens: 0 at each row's first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _inner(model):
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def accepts_logits_to_keep(model) -> bool:
    cached = getattr(model, "_probe_logits_to_keep", None)
    if cached is None:
        params = inspect.signature(_inner(model).forward).parameters
        cached = "logits_to_keep" in params
        try:
            model._probe_logits_to_keep = cached
        except AttributeError:  # pragma: no cover - exotic wrappers
            pass
    return cached


@torch.no_grad()
def forward(lm, ids, mask, *, keep: int, past=None, pos=None, cache: bool = False, **extra):
    """Run the model and return (logits of the last ``keep`` positions, cache).

    Args:
        ids, mask: (batch, n) new tokens and the attention mask over cache + new tokens.
        keep: how many trailing positions' logits are needed.
        past: a cache from a previous call (its positions come first in ``mask``).
        pos: position ids of the new tokens (default: computed from ``mask``).
        cache: return a KV cache (implied when ``past`` is given).
        extra: more model arguments (``adapter_names`` for a PEFT mixed batch; the handle's
            own adapter switch is then left alone).
    Returns:
        logits (batch, keep, vocab) in the model's dtype, and the updated cache.
    """
    if pos is None:
        pos = positions(mask)[:, -ids.shape[1] :]
    kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=cache or past is not None)
    if past is not None:
        kwargs["past_key_values"] = past
    if accepts_logits_to_keep(lm.model):
        kwargs["logits_to_keep"] = keep
    if "adapter_names" in extra:
        out = lm.model(**kwargs, **extra)  # per-row adapters: the batch says who is who
    else:
        with lm.active():
            out = lm.model(**kwargs, **extra)
    return out.logits[:, -keep:], getattr(out, "past_key_values", None)
