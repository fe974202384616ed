"""The answers a token shift scores (greedy, expected or given), and one batch's scoring:
both models' logits over the same ids, then ``pair_stats`` at the answer positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..engine.forward import forward, left_pad
from ..engine.generation import generate_many
from ..engine.prompts import encode, encode_prompt, render
from .stats import pair_stats


@dataclass
class _Answer:
    ids: list[int]  # prompt + answer
    n_prompt: int
    texts: list[str]  # per answer token
    answer: str
    rendered: str
    source: str


def _answers(base, tuned, items, answers, max_new_tokens, batch_size, system, first: int = 0) -> list[_Answer]:
    rendered = [render(tuned, p, system=system) for p, *_ in items]
    if answers == "greedy":
        traces = generate_many(tuned, [p for p, *_ in items], max_new_tokens=max_new_tokens, top_k=0,
                               batch_size=batch_size, progress=False, system=system)
        # the ids the model produced, never re-tokenized from the decoded text
        return [_Answer(encode_prompt(tuned, r) + t.ids, len(encode_prompt(tuned, r)),
                        [s.text for s in t.steps], t.text, r.text, "greedy")
                for r, t in zip(rendered, traces)]
    if answers == "expected":
        texts = []
        for i, (_, expected, cid, _) in enumerate(items):
            if not expected:
                raise ValueError(f"prompt {first + i} ({cid or 'no id'}) has no expected answer; "
                                 "answers='expected' needs a CaseSpec with expected=")
            texts.append(expected)
        source = "expected"
    else:
        if isinstance(answers, str) or not isinstance(answers, Sequence):
            raise TypeError("answers must be 'greedy', 'expected' or a list of answer strings")
        texts, source = list(answers), "given"
        if len(texts) != len(items):
            raise ValueError(f"got {len(texts)} answers for {len(items)} prompts")
    out = []
    for i, (r, text) in enumerate(zip(rendered, texts)):
        try:
            e = encode(tuned, r, text)
        except (TypeError, ValueError) as err:
            raise type(err)(f"answer {first + i}: {err}") from None
        out.append(_Answer(e.ids, e.n_prompt, e.texts, text, r.text, source))
    return out


def answer_index(n_answer: list[int], keep: int, first_row: int = 0) -> torch.Tensor:
    """Flat (row * keep + kept position) index of the logits before each answer token.

    Row b's answer token j is predicted by kept position keep - 1 - n_b + j (logits at p
    predict the token at p + 1; the last kept position predicts nothing we score).
    """
    return torch.cat([(first_row + b) * keep + torch.arange(keep - 1 - n, keep - 1)
                      for b, n in enumerate(n_answer)])


def _score_batch(base, tuned, shared, batch: list[_Answer], settings: dict):
    n_answer = [len(a.ids) - a.n_prompt for a in batch]
    keep = max(n_answer) + 1
    seqs = [a.ids for a in batch]
    targets = torch.tensor([t for a in batch for t in a.ids[a.n_prompt:]])
    if shared is not None:
        lm, (t_name, b_name) = shared
        if t_name is None:  # the same model twice: one forward serves both sides
            ids, mask = left_pad(seqs, lm.pad_id, lm.device)
            logits, _ = forward(lm, ids, mask, keep=keep)
            t_logits = b_logits = logits
            t_index = b_index = answer_index(n_answer, keep)
        else:  # a LoRA pair: tuned rows then base rows, each with its adapter name
            ids, mask = left_pad(seqs + seqs, lm.pad_id, lm.device)
            names = [t_name] * len(batch) + [b_name] * len(batch)
            logits, _ = forward(lm, ids, mask, keep=keep, adapter_names=names)
            t_logits = b_logits = logits
            t_index, b_index = answer_index(n_answer, keep), answer_index(n_answer, keep, len(batch))
    else:
        t_ids, t_mask = left_pad(seqs, tuned.pad_id, tuned.device)
        t_logits, _ = forward(tuned, t_ids, t_mask, keep=keep)
        b_ids, b_mask = left_pad(seqs, base.pad_id, base.device)
        b_logits, _ = forward(base, b_ids, b_mask, keep=keep)
        t_index = b_index = answer_index(n_answer, keep)
    return pair_stats(t_logits, t_index, b_logits, b_index, targets, top_k=settings["top_k"],
                      promote_k=settings["promote_k"], min_gain=settings["min_gain"],
                      min_prob=settings["min_prob"])
