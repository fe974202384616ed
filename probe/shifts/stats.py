"""Per-position statistics of one answer under two models, chunked over rows.

For every scored position both models' rows are read (float32) a chunk at a time, so memory
stays at a few ``rows x vocab`` chunks however many positions are scored:

* each model's log-probability and rank of the answer token, and its top-k;
* KL(tuned || base) over the full vocabulary (summed in float64);
* the tokens tuned puts most above base (the largest log-probability gains) and the ones it
  puts most below (the largest losses), among tokens one of the models finds plausible.

All access to a forward's logits goes through :func:`logit_rows`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..engine.stats import CHUNK_ELEMENTS


def logit_rows(logits, flat_index: torch.Tensor) -> torch.Tensor:
    """Rows ``flat_index`` of a forward's logits, flattened over (batch, keep), as float32.

    The one place that knows how :func:`probe.engine.forward.forward` hands out its logits.
    """
    if hasattr(logits, "rows"):  # a lazily computed LM head: ask it for the rows
        return logits.rows(flat_index).float()
    flat = logits.reshape(-1, logits.shape[-1])  # (batch * keep, vocab), a view
    return flat[flat_index.to(flat.device)].float()  # (n, vocab)


def vocab_of(logits) -> int:
    return int(logits.shape[-1])


@dataclass
class PairStats:
    """Plain-list statistics of ``n`` positions (one entry per position)."""

    tuned_logprob: list[float]
    base_logprob: list[float]
    tuned_rank: list[int]
    base_rank: list[int]
    kl: list[float]
    tuned_top: list[list[tuple[int, float]]]  # (id, logprob), most likely first
    base_top: list[list[tuple[int, float]]]
    promoted: list[list[tuple[int, float, float, float]]]  # (id, gain, tuned lp, base lp)
    demoted: list[list[tuple[int, float, float, float]]]


def _pick(gain: torch.Tensor, allowed: torch.Tensor, k: int, min_gain: float):
    """Per row, up to ``k`` (column, gain) with the largest ``gain`` >= ``min_gain`` where allowed."""
    if k == 0:
        return [[] for _ in range(gain.shape[0])]
    # NaN gains (-inf - -inf: a token both models mask) would sort first and take the k slots
    masked = torch.where(allowed & torch.isfinite(gain), gain, torch.full_like(gain, -math.inf))
    values, ids = torch.topk(masked, min(k, gain.shape[-1]), dim=-1)  # (c, k)
    out = []
    for vals, cols in zip(values.tolist(), ids.tolist()):
        out.append([(c, v) for c, v in zip(cols, vals) if v >= min_gain and math.isfinite(v)])
    return out


@torch.no_grad()
def pair_stats(tuned_logits, tuned_index: torch.Tensor, base_logits, base_index: torch.Tensor,
               targets: torch.Tensor, *, top_k: int, promote_k: int, min_gain: float,
               min_prob: float) -> PairStats:
    """Statistics of ``targets[i]`` at tuned row ``tuned_index[i]`` and base row ``base_index[i]``.

    Args:
        tuned_logits, base_logits: the two forwards' logits (may be the same object when
            both models ran in one batch).
        tuned_index, base_index: (n,) flat (batch * keep) row indices.
        targets: (n,) the answer token at each position.
        top_k: alternatives per model per position.
        promote_k: promoted / demoted tokens kept per position.
        min_gain: a token is promoted when log p_tuned - log p_base >= min_gain (nats).
        min_prob: ... and p_tuned >= min_prob (demoted: p_base >= min_prob).
    """
    vocab = vocab_of(tuned_logits)
    if vocab_of(base_logits) != vocab:
        raise ValueError(f"the two models' vocabularies differ ({vocab} vs {vocab_of(base_logits)})")
    n = len(targets)
    rows = max(1, CHUNK_ELEMENTS // vocab)
    floor = math.log(min_prob) if min_prob > 0 else -math.inf
    out = PairStats([], [], [], [], [], [], [], [], [])
    k = min(top_k, vocab)
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        t = logit_rows(tuned_logits, tuned_index[lo:hi])  # (c, vocab) float32
        b = logit_rows(base_logits, base_index[lo:hi]).to(t.device)
        tgt = targets[lo:hi, None].to(t.device).long()  # (c, 1)
        lt = torch.log_softmax(t, dim=-1)  # (c, vocab)
        lb = torch.log_softmax(b, dim=-1)
        out.tuned_logprob += lt.gather(1, tgt)[:, 0].tolist()
        out.base_logprob += lb.gather(1, tgt)[:, 0].tolist()
        # rank = 1 + how many logits are strictly larger (no sort)
        out.tuned_rank += ((t > t.gather(1, tgt)).sum(-1) + 1).tolist()
        out.base_rank += ((b > b.gather(1, tgt)).sum(-1) + 1).tolist()
        gain = lt - lb  # (c, vocab): log p_tuned - log p_base
        p = lt.exp()
        terms = torch.where(p > 0, p * gain, torch.zeros_like(p))  # 0 log 0 = 0
        out.kl += [max(v, 0.0) for v in terms.sum(-1, dtype=torch.float64).tolist()]
        del terms, p
        for name, logp in (("tuned_top", lt), ("base_top", lb)):
            if k:
                values, ids = torch.topk(logp, k, dim=-1)
                getattr(out, name).extend([list(zip(i, v)) for i, v in zip(ids.tolist(), values.tolist())])
            else:
                getattr(out, name).extend([] for _ in range(hi - lo))
        for name, sign, allowed in (("promoted", 1.0, lt >= floor), ("demoted", -1.0, lb >= floor)):
            picked = _pick(gain * sign, allowed, promote_k, min_gain)
            lt_rows, lb_rows = lt, lb
            for r, row in enumerate(picked):
                cols = [c for c, _ in row]
                tl = lt_rows[r, cols].tolist() if cols else []
                bl = lb_rows[r, cols].tolist() if cols else []
                getattr(out, name).append([(c, g * sign, a, z) for (c, g), a, z in zip(row, tl, bl)])
    return out
