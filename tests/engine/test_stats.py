import math

import torch

from probe.engine import stats


def _reference(row: torch.Tensor, target: int):
    logp = torch.log_softmax(row.double(), -1)
    p = logp.exp()
    entropy = float(-(torch.where(p > 0, p * logp, torch.zeros_like(p))).sum())
    return float(logp[target]), int((row > row[target]).sum()) + 1, entropy


def test_row_stats_match_the_reference_with_masked_logits_and_any_row_order(monkeypatch):
    monkeypatch.setattr(stats, "CHUNK_ELEMENTS", 3 * 50)  # several chunks of 3 rows
    torch.manual_seed(0)
    logits = torch.randn(10, 50) * 5
    logits[2, :40] = -math.inf  # a masked vocabulary: p = 0 must not make the entropy NaN
    logits[4, 7] = logits[4, 9]  # a tie
    before = logits.clone()
    targets = torch.tensor([3, 1, 45, 0, 9, 49, 2, 8, 8, 5])
    for index in (None, torch.arange(10), torch.tensor([9, 0, 5, 5, 2, 3, 4, 1, 7, 6])):
        got = stats.row_stats(logits, targets, top_k=3, index=index)
        rows = range(10) if index is None else index.tolist()
        for i, r in enumerate(rows):
            lp, rank, entropy = _reference(logits[r], int(targets[i]))
            assert (got.logprob[i] == lp == -math.inf or abs(got.logprob[i] - lp) < 1e-5) and got.rank[i] == rank
            assert math.isfinite(got.entropy[i]) and abs(got.entropy[i] - entropy) < 1e-5
            assert got.top_ids[i][0] == int(logits[r].argmax())
    assert torch.equal(logits, before)  # the caller's logits are never modified
