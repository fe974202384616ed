"""Teacher-forced scoring: how likely was every token of a given answer?

    >>> t = probe.score(lm, "What is the capital of Japan?", "Tokyo")
    >>> t[0].prob, t[0].rank, t[0].top[0].text

Each answer token is scored from the logits one position before it (logits at position p
predict the token at p + 1), with the prompt and the answer tokenized together.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from .forward import forward, left_pad
from .support import require
from ..core.progress import progress as progress_bar
from .prompts import Encoded, Prompt, encode, render
from .trace import TokenTrace
from .stats import make_steps, row_stats


def _score_encoded(lm, encoded: list[Encoded], top_k: int, settings: dict, **extra) -> list[TokenTrace]:
    """One left-padded forward over a batch; only the answer positions' logits are kept.
    ``extra``: more model arguments (``adapter_names`` for a PEFT mixed batch)."""
    n_answer = [len(e.ids) - e.n_prompt for e in encoded]
    if len({len(e.ids) for e in encoded}) > 1:
        require(lm, "padding", "score_many")
    keep = max(n_answer) + 1  # the logits before each answer token, plus the last position
    ids, mask = left_pad([e.ids for e in encoded], lm.pad_id, lm.device)
    logits, _ = forward(lm, ids, mask, keep=keep, **extra)  # (batch, keep, vocab)
    # Row b's answer token j is predicted by kept position keep - 1 - n_b + j (logits at p
    # predict the token at p + 1; the last kept position predicts nothing we score).
    index = torch.cat([b * keep + torch.arange(keep - 1 - n, keep - 1) for b, n in enumerate(n_answer)])
    targets = torch.tensor([t for e in encoded for t in e.answer_ids])
    stats = row_stats(logits, targets, top_k, index=index.to(logits.device))
    traces, lo = [], 0
    for enc, n in zip(encoded, n_answer):
        steps = make_steps(lm, stats, enc.answer_ids, enc.texts, enc.spans, offset=lo,
                           straddles_first=enc.straddles)
        lo += n
        traces.append(TokenTrace(prompt=enc.prompt, text=enc.answer, steps=tuple(steps),
                                 kind="score", model=lm.name, settings=settings))
    return traces


LOGITS_BUDGET = 1 << 27  # kept logits per batch (elements): 512 MiB in float32


def _vocab_size(lm) -> int:
    emb = lm.model.get_output_embeddings()
    return int(emb.weight.shape[0]) if emb is not None else len(lm.tokenizer)


def _batches(encoded: list, batch_size: int, vocab: int, rows_per: int = 1):
    """Index batches, shortest sequences first, within ``batch_size`` and the logits budget.

    ``encoded`` items have ``ids`` and ``n_prompt`` (Encoded, shift's answers); ``rows_per``:
    batch rows per item (2 when base and tuned share a batch)."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
    batch: list[int] = []
    keep = 0
    for i in order:
        k = max(keep, len(encoded[i].ids) - encoded[i].n_prompt + 1)
        if batch and (len(batch) == batch_size or (len(batch) + 1) * rows_per * k * vocab > LOGITS_BUDGET):
            yield batch
            batch, k = [], len(encoded[i].ids) - encoded[i].n_prompt + 1
        batch.append(i)
        keep = k
    if batch:
        yield batch


def check_top_k(top_k) -> int:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative int, got {top_k!r}")
    return top_k


def score(
    lm,
    prompt: Prompt,
    target: str,
    top_k: int = 5,
    *,
    raw: bool | None = None,
    system: str | None = None,
) -> TokenTrace:
    """Per-token probability, rank, entropy and top-k alternatives of ``target`` after ``prompt``.

    Args:
        lm: from :func:`probe.load`.
        prompt: text (rendered with the chat template on a chat LM) or a list of messages.
        target: the answer to score, exactly as it would follow the rendered prompt.
        top_k: alternatives to report per token.
        raw: force raw text (True) or the chat template (False) for this call.
        system: a system message (chat prompts only).

    Returns:
        A TokenTrace whose steps tile ``target`` character by character.
    """
    top_k = check_top_k(top_k)
    enc = encode(lm, render(lm, prompt, raw=raw, system=system), target)
    return _score_encoded(lm, [enc], top_k, {"top_k": top_k})[0]


def encode_pairs(lm, pairs, *, raw: bool | None = None, system: str | None = None) -> list[Encoded]:
    """Each (prompt, target) rendered and encoded; a bad one is an error naming its index."""
    encoded: list[Encoded] = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise TypeError(f"pair {i} must be a (prompt, target) tuple, got {pair!r:.80}")
        try:
            encoded.append(encode(lm, render(lm, pair[0], raw=raw, system=system), pair[1]))
        except (TypeError, ValueError) as err:
            raise type(err)(f"pair {i}: {err}") from None
    return encoded


def score_batch(lm, _unused, batch, *, top_k: int) -> list[TokenTrace]:
    """One batch ``(adapter or None, [Encoded, ...])`` scored: an engine's batch function
    (``probe.core.engines``; module-level, so a worker holding its own ``lm`` can run it)."""
    adapter, encoded = batch
    if adapter is not None and adapter != lm.active_adapter:
        lm.use_adapter(adapter)
    return _score_encoded(lm, encoded, top_k, {"top_k": top_k})


def score_many(
    lm,
    pairs: Iterable[tuple[Prompt, str]],
    batch_size: int = 16,
    top_k: int = 5,
    *,
    progress: bool = True,
    raw: bool | None = None,
    system: str | None = None,
) -> list[TokenTrace]:
    """Score many (prompt, target) pairs in padded batches; results in the input order.

    Pairs are grouped by length to waste little on padding. Results equal one-by-one
    :func:`score` within float32 rounding (padding is masked, positions come from the mask).
    """
    top_k = check_top_k(top_k)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    encoded = encode_pairs(lm, pairs, raw=raw, system=system)
    results: list[TokenTrace | None] = [None] * len(encoded)
    with progress_bar(len(encoded), progress, "score", "pair") as bar:
        for chunk in _batches(encoded, batch_size, _vocab_size(lm)):
            for i, trace in zip(chunk, score_batch(lm, None, (None, [encoded[i] for i in chunk]), top_k=top_k)):
                results[i] = trace
            bar.update(len(chunk))
    return results  # type: ignore[return-value]
