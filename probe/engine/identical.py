"""Is the tuned model the base model? A pair whose logits are equal makes every verdict
"never_had": load_pair and diagnose warn once (IdenticalModelsWarning)."""

from __future__ import annotations

import warnings

import torch

from .forward import forward, left_pad


class IdenticalModelsWarning(UserWarning):
    """The tuned model gives exactly the base model's logits: the adapter (or checkpoint)
    probably never applied, and every verdict would read "never_had"."""


SANITY_TEXT = "The capital of France is Paris. 1 2 3"


@torch.no_grad()
def same_logits(a, b, text: str = SANITY_TEXT) -> bool:
    """Whether ``a`` and ``b`` give the same next-token logits over ``text`` (raw, both models)."""
    ids = list(a.tokenizer(text)["input_ids"])[:16] or [a.pad_id]
    if ids != (list(b.tokenizer(text)["input_ids"])[:16] or [b.pad_id]):
        return False  # different tokenizers: different models
    outs = []
    for lm in (a, b):
        x, mask = left_pad([ids], lm.pad_id, lm.device)
        logits, _ = forward(lm, x, mask, keep=len(ids))
        outs.append(logits.materialize().cpu())
    return outs[0].shape == outs[1].shape and bool(torch.equal(outs[0], outs[1]))


def warn_if_same(base, tuned, where: str) -> bool:
    """Warn (IdenticalModelsWarning) when tuned and base give identical logits; True if so."""
    if not same_logits(base, tuned):
        return False
    what = (f"adapter {tuned.adapter!r}" if tuned.adapter_enabled is not None
            else f"checkpoint {tuned.source!r}")
    warnings.warn(IdenticalModelsWarning(
        f"{where}: the tuned model's logits equal the base model's exactly ({what} vs "
        f"{base.source!r}). The adapter or checkpoint did not change the model (not applied, "
        "zero weights, or the same folder twice); base-vs-tuned verdicts would be meaningless."),
        stacklevel=3)
    return True
