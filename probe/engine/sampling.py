"""Choosing each row's next token: the argmax, or a draw from the processed distribution.

    >>> draw(torch.tensor([[0.0, 0.25, 0.75]]), torch.tensor([0.5]))
    tensor([2])

Sampling is by inverse CDF: one uniform per row and step, from the batch's generator or from
the row's own (a row with its own seed draws what it would draw generated alone).
"""

from __future__ import annotations

import torch

from .settings import GenerationSettings


def draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: row b takes the token whose share of the row's cumulative mass
    holds ``u[b]`` (uniform in [0, 1)); a zero-probability token is never taken.

    One cumulative sum and one search for the whole batch: ``torch.multinomial`` called row by
    row (each row has its own seed) cost ~1 ms a row on a 49k vocabulary.
    """
    cdf = probs.double().cumsum(-1)  # float64: a token of p = 1e-9 near the top keeps its share
    x = (u.double() * cdf[:, -1])[:, None]
    idx = torch.searchsorted(cdf, x, right=True)[:, 0].clamp(max=probs.shape[-1] - 1)
    bad = (probs.gather(1, idx[:, None])[:, 0] <= 0).nonzero()[:, 0].tolist()
    for b in bad:  # rounding put it on a token without mass (rare): the nearest one before it
        mass = (probs[b] > 0).nonzero()[:, 0]
        before = mass[mass <= idx[b]]
        idx[b] = before[-1] if before.numel() else mass[0]
    return idx


def _choose(last: torch.Tensor, rows: list, settings: GenerationSettings, generator):
    """Each row's next token and its sampling probability (None for an argmax row).

    One ``generator`` draws a uniform for every row of the batch; a row with its own ``gen``
    draws its uniform from it (the same draws as that row generated alone with its seed) and
    the other rows take the argmax.
    """
    if generator is None and all(r.gen is None for r in rows):
        return last.float().argmax(dim=-1), None
    probs = _processed(last, settings.temperature, settings.top_p)  # (batch, vocab)
    if generator is not None:
        u = torch.rand(len(rows), generator=generator, device=generator.device)
        chosen = draw(probs, u.to(probs.device))
        return chosen, probs.gather(1, chosen[:, None])[:, 0].tolist()
    chosen = last.float().argmax(dim=-1)
    mine = [b for b, row in enumerate(rows) if row.gen is not None and not row.done]
    if not mine:
        return chosen, [None] * len(rows)
    u = torch.cat([torch.rand(1, generator=rows[b].gen, device=rows[b].gen.device).to(probs.device)
                   for b in mine])
    index = torch.tensor(mine, device=probs.device)
    chosen[index] = draw(probs[index], u)
    picked = probs[index].gather(1, chosen[index][:, None])[:, 0].tolist()
    sampled: list[float | None] = [None] * len(rows)
    for b, p in zip(mine, picked):
        sampled[b] = p
    return chosen, sampled


def _processed(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Sampling distribution (batch, vocab) after temperature and nucleus (top-p) filtering."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass strictly above each token
        sorted_p = sorted_p.masked_fill(before >= top_p, 0.0)  # the first token always stays
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs
