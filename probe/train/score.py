"""Score training examples under base and tuned: the masked tokens only, both sides in one batch.

The sequences are left-padded and run with ``keep`` = the span from the first scored token's
predecessor to the end, so the lazy head is applied only to the rows the mask selects
(:func:`probe.engine.stats.row_stats`, chunked): memory grows with the scored tokens, never
with length x vocabulary. A LoRA pair runs tuned rows and base rows in one forward with
per-row adapter names, as ``probe.shift`` does.
"""

from __future__ import annotations

import math

import torch

from ..engine.forward import forward, left_pad
from ..engine.stats import row_stats, step_at
from ..engine.trace import TokenTrace
from .masks import Tokens


class _Seq:
    """What ``probe.engine.scoring._batches`` needs: ids and where scoring starts."""

    __slots__ = ("ids", "n_prompt")

    def __init__(self, t: Tokens):
        self.ids = t.ids
        self.n_prompt = t.mask.index(True)  # the first scored token


def seqs(toks: list[Tokens]) -> list[_Seq]:
    return [_Seq(t) for t in toks]


def _index(toks: list[Tokens], keep: int, first_row: int = 0) -> torch.Tensor:
    """Flat (row * keep + kept position) of the logits that predict each scored token.

    Left padding puts token t of a row of length L at kept position t - (L - keep); token t is
    predicted by position t - 1."""
    out = []
    for b, t in enumerate(toks):
        shift = len(t.ids) - keep
        out.extend((first_row + b) * keep + (i - 1 - shift) for i, m in enumerate(t.mask) if m)
    return torch.tensor(out, dtype=torch.long)


def score_batch(base, tuned, shared, toks: list[Tokens], top_k: int):
    """(base RowStats, tuned RowStats) over every scored token of ``toks``, in order."""
    keep = max(len(t.ids) - t.mask.index(True) + 1 for t in toks)
    ids_list = [t.ids for t in toks]
    targets = torch.tensor([i for t in toks for i, m in zip(t.ids, t.mask) if m], dtype=torch.long)
    index = _index(toks, keep)
    if shared is not None:
        lm, (t_name, b_name) = shared
        if t_name is None:  # the same model twice
            ids, mask = left_pad(ids_list, lm.pad_id, lm.device)
            logits, _ = forward(lm, ids, mask, keep=keep)
            stats = row_stats(logits, targets, top_k, index=index.to(logits.device))
            return stats, stats
        ids, mask = left_pad(ids_list + ids_list, lm.pad_id, lm.device)
        names = [t_name] * len(toks) + [b_name] * len(toks)
        logits, _ = forward(lm, ids, mask, keep=keep, adapter_names=names)
        t_stats = row_stats(logits, targets, top_k, index=index.to(logits.device))
        b_stats = row_stats(logits, targets, top_k, index=_index(toks, keep, len(toks)).to(logits.device))
        return b_stats, t_stats
    out = []
    for lm in (base, tuned):
        ids, mask = left_pad(ids_list, lm.pad_id, lm.device)
        logits, _ = forward(lm, ids, mask, keep=keep)
        out.append(row_stats(logits, targets, top_k, index=index.to(logits.device)))
        del logits
    return out[0], out[1]


def trace(lm, t: Tokens, stats, lo: int, settings: dict) -> TokenTrace:
    """The scored tokens of one example as a TokenTrace: ``prompt`` is the rendered text before
    the first scored token, ``text`` the rest; unscored tokens in between have no step."""
    scored = [i for i, m in enumerate(t.mask) if m]
    cut = min(t.spans[scored[0]][0], len(t.rendered))
    steps = []
    for j, i in enumerate(scored):
        a, b = t.spans[i]
        text = t.rendered[a:b] if b > a else lm.token_text(t.ids[i])
        steps.append(step_at(lm, stats, lo + j, t.ids[i], text, max(a - cut, 0), max(b - cut, 0), index=j))
    return TokenTrace(prompt=t.rendered[:cut], text=t.rendered[cut:], steps=tuple(steps), kind="score",
                      model=lm.name, settings=settings)


def losses(stats, lo: int, n: int) -> tuple[float, ...]:
    """Per-token loss (-log p, nats) of rows lo .. lo + n."""
    return tuple(-float(x) for x in stats.logprob[lo:lo + n])


def mean(xs) -> float:
    xs = list(xs)
    return math.fsum(xs) / len(xs) if xs else math.nan
