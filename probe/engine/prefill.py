"""Teacher-forced scores read off a generation's prefill, instead of a forward of their own.

A diagnosis scores ``expected`` where each run answers: after the prompt, after the forced
prefix, after ``base_prompt``. Those are the very inputs its generations prefill, so the
prompt need not be run again: when the scored sequence (prompt and answer tokenized together,
as :func:`probe.score` does) starts with the row's prefill ids, the answer tokens inside the
prefill are read from its kept logits, the first one after it from its last position, and the
rest by feeding them on top of the KV cache (:func:`probe.engine.forward.lookahead`, which leaves the
cache as it was for the generation that follows). Only a few answer tokens are computed per
row, where ``score_many`` would run every prompt again. The numbers equal ``probe.score`` of
the same text within the rounding of the model's dtype (a cached step and a fresh forward add
in another order; the tests check 1e-4 in float32); a sequence that does not start with the
prefill (a token merging across the boundary) or runs more than ``SHARE_MAX`` tokens past it
is scored the usual way.
"""

from __future__ import annotations

import torch

from .forward import feed_on_cache
from .support import feeds_one_by_one
from .prompts import Encoded
from .trace import TokenTrace
from .stats import row_stats, step_at

SHARE_MAX = 64  # answer tokens past the prefill fed on the cache; a longer answer is scored apart


def shares_prefill(enc: Encoded | None, prefill: list[int]) -> bool:
    """Whether ``enc`` can be scored on top of ``prefill``'s cache."""
    n = len(prefill)
    return (enc is not None and 0 < enc.n_prompt <= n <= len(enc.ids) and enc.ids[:n] == prefill
            and len(enc.ids) - n <= SHARE_MAX)


def kept_positions(enc: Encoded | None, prefill: list[int]) -> int:
    """How many of the prefill's last positions the scores need (0: none)."""
    return len(prefill) - enc.n_prompt + 1 if shares_prefill(enc, prefill) else 0


def scores_on_prefill(lm, logits, past, mask, pos, extra, prefills: list[list[int]],
                      encs: list[Encoded | None], top_k: int) -> list[TokenTrace | None]:
    """Score row b's ``encs[b]`` (one that :func:`shares_prefill`) from the prefill's kept
    ``logits`` (batch, keep, vocab) and its cache ``past``; None for the other rows."""
    keep = logits.shape[1]
    live = [b for b, (enc, ids) in enumerate(zip(encs, prefills)) if shares_prefill(enc, ids)]
    if not live:
        return [None] * len(encs)
    # tokens up to the first one past the prefill: predicted by the kept prefill positions
    first_index, first_ids, where = [], [], {}
    for b in live:
        enc, n = encs[b], len(prefills[b])
        for q in range(enc.n_prompt, min(len(enc.ids), n + 1)):
            where[(b, q)] = (0, len(first_ids))
            first_index.append(b * keep + (q - 1) - (n - keep))
            first_ids.append(enc.ids[q])
    stats = [row_stats(logits, torch.tensor(first_ids), top_k,
                       index=torch.tensor(first_index, device=logits.device))]
    # the rest: fed on top of the cache (right-padded), each position predicting the next
    feeds = [encs[b].ids[len(prefills[b]) : -1] if b in live else [] for b in range(len(encs))]
    more = feed_on_cache(lm, feeds, past, mask, pos, one_by_one=feeds_one_by_one(lm), **extra)
    if more is not None:
        width = more.shape[1]
        more_index, more_ids = [], []
        for b in live:
            n = len(prefills[b])
            for t in range(len(feeds[b])):
                where[(b, n + 1 + t)] = (1, len(more_ids))
                more_index.append(b * width + t)
                more_ids.append(encs[b].ids[n + 1 + t])
        stats.append(row_stats(more, torch.tensor(more_ids), top_k,
                               index=torch.tensor(more_index, device=more.device)))
    out: list[TokenTrace | None] = [None] * len(encs)
    for b in live:
        enc = encs[b]
        steps = []
        for j, q in enumerate(range(enc.n_prompt, len(enc.ids))):
            part, row = where[(b, q)]
            a, z = enc.spans[j]
            steps.append(step_at(lm, stats[part], row, enc.ids[q], enc.texts[j], a, z, index=j,
                                 forced=False, straddles=enc.straddles and j == 0))
        out[b] = TokenTrace(prompt=enc.prompt, text=enc.answer, steps=tuple(steps), kind="score",
                            model=lm.name, settings={"top_k": top_k})
    return out
