"""Brute-force references: one full forward per prefix, no batching, no cache, float64.

Deliberately independent of probe's own code paths (its own tokenization, its own math).
"""

from __future__ import annotations

import torch


@torch.no_grad()
def next_token_logits(model, ids: list[int]) -> torch.Tensor:
    """Logits (float64) of the token after ``ids``: a full forward over the whole prefix."""
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0, -1].double()


def stats(logits: torch.Tensor, token: int, top_k: int = 5, tie: float = 1e-4) -> dict:
    logp = torch.log_softmax(logits, -1)
    lo = 1 + int((logits > logits[token] + tie).sum())  # rank bounds, tolerant of near-ties
    hi = 1 + int((logits > logits[token] - tie).sum())
    p = logp.exp()
    return {
        "logprob": float(logp[token]),
        "rank_range": (lo, hi),
        "entropy": float(-(p * logp).sum()),
        "top_logprobs": torch.topk(logp, top_k).values.tolist(),
    }


def full_ids(lm, prompt_text: str, target: str, add_special: bool) -> list[int]:
    """The tokenizer's own ids for prompt + target, without post-processor tail tokens."""
    enc = lm.tokenizer(prompt_text + target, add_special_tokens=add_special, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offs = [tuple(o) for o in enc["offset_mapping"]]
    while ids and offs[-1] == (0, 0) and len(ids) > 1:
        ids.pop()
        offs.pop()
    return ids


def check_step(step, ref: dict, tol: float = 1e-4) -> None:
    assert abs(step.logprob - ref["logprob"]) < tol, (step, ref)
    lo, hi = ref["rank_range"]
    assert lo <= step.rank <= hi, (step.rank, ref["rank_range"])
    assert abs(step.entropy - ref["entropy"]) < tol, (step.entropy, ref["entropy"])
    got = [a.logprob for a in step.top]
    assert len(got) == len(ref["top_logprobs"][: len(got)])
    for g, r in zip(got, ref["top_logprobs"]):
        assert abs(g - r) < tol
