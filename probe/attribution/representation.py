"""Representation similarity: the tuned model's last hidden state, averaged over answer tokens.

An example's vector is the mean of the last layer's hidden states at its scored tokens (the
trainer's mask); a case's, at its answer tokens (:attr:`Query.answer_ids`: the expected answer
up to the divergent token, then the wrong token). The score is their cosine. One forward per
example, no gradient: the cheap baseline the attribution literature finds hard to beat.
"""

from __future__ import annotations

import torch

from ..engine.forward import accepts_logits_to_keep


@torch.no_grad()
def mean_state(lm, ids, positions) -> torch.Tensor:
    """float32 mean of the last hidden layer over ``positions`` of one sequence."""
    x = torch.tensor([list(ids)], device=lm.device)
    kw = {"logits_to_keep": 1} if accepts_logits_to_keep(lm.model) else {}
    with lm.active():
        out = lm.model(input_ids=x, attention_mask=torch.ones_like(x), output_hidden_states=True, **kw)
    h = out.hidden_states[-1][0].float()  # (len, hidden)
    return h[torch.tensor(list(positions), device=h.device)].mean(0)


def representation_scores(lm, queries, examples, progress=None) -> torch.Tensor:
    """(examples x queries) float64 cosines."""
    qv = []
    for q in queries:
        ids = list(q.ids[:q.n_prompt]) + list(q.answer_ids)
        qv.append(mean_state(lm, ids, range(q.n_prompt, len(ids))))
    qm = torch.nn.functional.normalize(torch.stack(qv).double(), dim=1)  # (k, hidden)
    out = torch.zeros(len(examples), len(queries), dtype=torch.float64)
    for i, t in enumerate(examples):
        v = mean_state(lm, t.ids, [j for j, m in enumerate(t.mask) if m]).double()
        out[i] = qm @ torch.nn.functional.normalize(v, dim=0)
        if progress is not None:
            progress(1)
    return out


def representation_batch(base, tuned, batch, *, queries):
    """One batch on an engine's worker (module-level, picklable): a cosine row per example."""
    return representation_scores(tuned, queries, batch).tolist()
