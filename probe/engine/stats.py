"""Next-token statistics from logits rows, in float32, chunked over rows.

The one place where probabilities are computed, shared by scoring and generation. Memory
stays at one chunk of ``rows x vocab`` float32 whatever the number of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .forward import NonFiniteLogitsError
from .trace import Alternative, TokenStep

CHUNK_ELEMENTS = 1 << 22  # float32 elements per chunk (16 MiB)


@dataclass
class RowStats:
    """Statistics of ``n`` next-token distributions (plain Python lists)."""

    logprob: list[float]  # of the chosen/target token
    rank: list[int]
    entropy: list[float]
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]


def _rows(logits, index: torch.Tensor | None, lo: int, hi: int) -> torch.Tensor:
    """Rows ``index[lo:hi]`` of ``logits`` (a slice, not a copy, when they are consecutive).

    ``logits`` is a (rows, vocab) tensor or a :class:`probe.engine.forward.Logits` (flat rows), whose
    head is then applied to these rows only.
    """
    if not torch.is_tensor(logits):
        pick = torch.arange(lo, min(hi, len_rows(logits))) if index is None else index[lo:hi]
        return logits.rows(pick)
    if index is None:
        return logits[lo:hi]
    pick = index[lo:hi]
    first = int(pick[0])
    if len(pick) == 1 or bool((pick[1:] - pick[:-1] == 1).all()):
        return logits[first : first + len(pick)]
    return logits[pick]


def len_rows(logits) -> int:
    """How many flat rows a (rows, vocab) tensor or a Logits (batch * keep) has."""
    return logits.shape[0] if torch.is_tensor(logits) else logits.shape[0] * logits.shape[1]


@torch.no_grad()
def row_stats(logits, targets: torch.Tensor, top_k: int,
              index: torch.Tensor | None = None) -> RowStats:
    """Stats of ``targets[i]`` under the distribution ``softmax(logits[index[i]])``.

    Args:
        logits: (rows, vocab), any dtype, upcast to float32 one chunk at a time; or a
            :class:`probe.engine.forward.Logits`, whose flat rows (``b * keep + j``) are computed
            from hidden states one chunk at a time.
        targets: (n,) token ids.
        top_k: how many alternatives to return per row (0 for none).
        index: (n,) which rows of ``logits`` to use (default: all, in order). Rows are
            picked chunk by chunk, so no copy of all selected rows is ever made.
    """
    vocab = logits.shape[-1]
    n = len(targets)
    k = min(top_k, vocab)
    rows = max(1, CHUNK_ELEMENTS // vocab)
    # Results go into buffers made before the loop: small tensors kept alive between chunks
    # would pin the chunks' freed memory (heap fragmentation grew RSS by ~1.5 MB per row).
    dev = logits.device
    out_lp = torch.empty(n, device=dev)
    out_rank = torch.empty(n, dtype=torch.long, device=dev)
    out_ent = torch.empty(n, device=dev)
    out_ids = torch.empty((n, k), dtype=torch.long, device=dev)
    out_top = torch.empty((n, k), device=dev)
    targets = targets.to(dev).long()
    for lo in range(0, n, rows):
        hi = min(lo + rows, n)
        x = _rows(logits, index, lo, hi).float()  # (c, vocab)
        t = targets[lo:hi, None]  # (c, 1)
        lse = torch.logsumexp(x, dim=-1, keepdim=True)  # (c, 1)
        if bool((torch.isnan(lse) | (lse == math.inf)).any()):  # -inf entries alone are fine (p = 0)
            bad = lo + int((torch.isnan(lse) | (lse == math.inf))[:, 0].nonzero()[0, 0])
            raise NonFiniteLogitsError(
                f"the model's logits are NaN or +inf at scored position {bad} (of {n}); no probability "
                "can be read from them. Likely causes: a dtype overflow (float16: load in bfloat16 or "
                "float32) or broken weights")
        chosen = x.gather(1, t)  # (c, 1)
        out_lp[lo:hi] = (chosen - lse)[:, 0]
        # rank = 1 + how many logits are strictly larger: no sort over the vocabulary
        out_rank[lo:hi] = (x > chosen).sum(dim=-1) + 1
        if k:
            values, ids = torch.topk(x, k, dim=-1)  # (c, k), largest first
            out_ids[lo:hi] = ids
            out_top[lo:hi] = values - lse
        # entropy = -sum p log p with log p = x - lse; nansum: p=0 where x=-inf gives 0*inf
        logp = x - lse  # (c, vocab); never in place: x may be the caller's logits
        out_ent[lo:hi] = -torch.nansum(logp.exp() * logp, dim=-1)
        del x, logp, lse, chosen
    return RowStats(
        logprob=out_lp.tolist(),
        rank=out_rank.tolist(),
        entropy=out_ent.tolist(),
        top_ids=out_ids.tolist(),
        top_logprobs=out_top.tolist(),
    )


def alternatives(lm, ids: list[int], logprobs: list[float]) -> tuple[Alternative, ...]:
    return tuple(
        Alternative(id=i, text=lm.token_text(i), prob=math.exp(lp), logprob=lp)
        for i, lp in zip(ids, logprobs)
    )


def step_at(lm, stats: RowStats, row: int, token: int, text: str, start: int = 0, end: int = 0,
            index: int = 0, **flags) -> TokenStep:
    """The TokenStep of ``token`` from row ``row`` of ``stats`` (flags: forced, watch, ...)."""
    lp = stats.logprob[row]
    return TokenStep(
        index=index, id=int(token), text=text, start=start, end=end, logprob=lp,
        prob=math.exp(lp), rank=int(stats.rank[row]), entropy=max(stats.entropy[row], 0.0),
        top=alternatives(lm, stats.top_ids[row], stats.top_logprobs[row]), **flags,
    )


def make_steps(
    lm,
    stats: RowStats,
    ids: list[int],
    texts: list[str],
    spans: list[tuple[int, int]],
    *,
    offset: int = 0,
    forced: bool = False,
    straddles_first: bool = False,
) -> list[TokenStep]:
    """Zip row statistics (from row ``offset`` on) with token ids, texts and spans into steps."""
    return [
        step_at(lm, stats, offset + j, tid, text, a, b, index=j, forced=forced,
                straddles=straddles_first and j == 0)
        for j, (tid, text, (a, b)) in enumerate(zip(ids, texts, spans))
    ]
