"""The noise floor: random adapters matched to the trained one module by module, a planted shift
at the top of the null, a random adapter inside it, the trained weights restored, the cache."""

import math

import pytest
import torch

import probe
from probe.shifts.noise import _update, adapter_hash, lora_modules, percentile, random_adapter
from builders import json_roundtrip, make_adapter
from recite_lora import PROMPT, train_reciting_lora

PROMPTS = [PROMPT, "Name a color.", "Count to three.", "Describe the sea.", "What is two plus two?",
           "Say hello.", "Tell me a joke.", "Where is Paris?"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A tiny LoRA trained to answer PROMPT with a fixed sentence: a shift planted on one prompt."""
    base_dir, adapter, _ = train_reciting_lora(tmp_path_factory.mktemp("planted"))
    return base_dir, adapter


def test_percentile_counts_values_below_and_half_the_ties():
    assert percentile(5.0, [1, 2, 3, 4]) == 100.0 and percentile(0.0, [1, 2]) == 0.0
    assert percentile(2.0, [1, 2, 3, 4]) == 37.5  # 1 below, 1 tie: (1 + 0.5) / 4
    assert math.isnan(percentile(math.nan, [1.0]))


def test_random_adapters_keep_rank_modules_and_each_update_norm_then_restore(planted):
    base_dir, adapter = planted
    _, tuned = probe.load_pair(str(base_dir), adapter=str(adapter))
    before = {n: (_update(m, a).clone(), m.lora_A[a].weight.shape) for n, m, a in lora_modules(tuned)}
    digest = adapter_hash(tuned)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        logits = tuned.model(input_ids=ids).logits
    with random_adapter(tuned, seed=3):
        for n, m, a in lora_modules(tuned):
            upd, shape = before[n]
            assert m.lora_A[a].weight.shape == shape
            assert not torch.allclose(_update(m, a), upd)
            # float32 norms of (out x in) products: 1e-5 relative covers their rounding
            assert math.isclose(float(torch.linalg.norm(_update(m, a))), float(torch.linalg.norm(upd)), rel_tol=1e-5)
        assert adapter_hash(tuned) != digest
    assert adapter_hash(tuned) == digest
    with torch.no_grad():
        assert torch.equal(tuned.model(input_ids=ids).logits, logits)


def test_the_planted_prompt_tops_the_null_and_a_null_draw_gets_its_own_figures(planted, tmp_path):
    """The observed figures are the shift's; the planted prompt tops its null; an adapter that
    IS one of the null's draws (seed 3's) gets that draw's figures back.

    The tiny unigram tokenizer trains differently on every run, so every figure here changes
    between runs. Measured over 21 runs: the planted prompt's KL was 1.6-3.5x the largest of
    its 10 null values (2.6-3.4x the second largest, over 9 of them), mean_kl 1.25-3.0x the
    null's largest (1.96-3.1x the second largest): so at most one null draw may reach them
    (percentile 90 or more), not none, which one run came within 1.25x of. Not asserted any more:
    that the planted prompt moved most of the 8 prompts (its KL was only 1.02-1.38x the next
    prompt's: the reciting LoRA moves every prompt), nor that a random adapter of seed 5 lands
    strictly inside the null (its percentile is one draw in 0..100 by 10: 0 in 1 run of 20)."""
    base_dir, adapter = planted
    base, tuned = probe.load_pair(str(base_dir), adapter=str(adapter))
    n = probe.noise_floor(base, tuned, PROMPTS, seeds=10, max_new_tokens=8, cache_dir=tmp_path)
    s = probe.shift(base, tuned, PROMPTS, max_new_tokens=8)
    assert n.observed["kl"] == [p.kl for p in s.prompts] and n.observed["mean_kl"] == s.mean_kl
    assert n.prompt_percentiles("kl")[0] >= 90.0 and n.percentile("mean_kl") >= 90.0
    assert json_roundtrip(n) == n and "percentile" in str(n) and "probe-noise" in n._repr_html_()
    # an adapter drawn as the null draws (seed 3, norms matched to its own): the null's seed-3
    # entry repeats the observed figures, the other nine do not
    rand = make_adapter(base_dir, tmp_path / "random", seed=5)
    b2, t2 = probe.load_pair(str(base_dir), adapter=str(rand))
    with random_adapter(t2, seed=3):
        drawn = [(m.lora_A[a].weight.clone(), m.lora_B[a].weight.clone()) for _, m, a in lora_modules(t2)]
    with torch.no_grad():
        for (_, m, a), (A, B) in zip(lora_modules(t2), drawn):
            m.lora_A[a].weight.copy_(A)
            m.lora_B[a].weight.copy_(B)
    r = probe.noise_floor(b2, t2, PROMPTS, seeds=10, max_new_tokens=8, cache=False)
    own, obs = r.null[r.seeds.index(3)], r.observed
    # the draw is rescaled by (its own norm / its own norm): float32 rounding only. Measured
    # over 10 runs: at most 5.8e-7 relative apart (1e-4 is the bound); the nearest other draw's
    # per-prompt KLs were at least 24% apart somewhere (1% is the bound)
    assert own["kl"] == pytest.approx(obs["kl"], rel=1e-4) and own["mean_kl"] == pytest.approx(obs["mean_kl"], rel=1e-4)
    assert own["shifted"] == obs["shifted"] and own["shifted_ratio"] == obs["shifted_ratio"]
    assert all(d["kl"] != pytest.approx(obs["kl"], rel=1e-2) for d in r.null if d is not own)


def test_the_null_is_cached_per_adapter_prompts_and_seeds(planted, tmp_path):
    base_dir, adapter = planted
    base, tuned = probe.load_pair(str(base_dir), adapter=str(adapter))
    s = probe.shift(base, tuned, PROMPTS[:3], max_new_tokens=4)
    first = probe.noise_floor(base, tuned, s, seeds=10, cache_dir=tmp_path)
    again = probe.noise_floor(base, tuned, s, seeds=10, cache_dir=tmp_path)
    assert not first.from_cache and again.from_cache and again.null == first.null
    assert len(list((tmp_path / "noise").iterdir())) == 1
    other = probe.noise_floor(base, tuned, s, seeds=list(range(1, 11)), cache_dir=tmp_path)
    assert not other.from_cache and other.null != first.null
    assert len(list((tmp_path / "noise").iterdir())) == 2
    (tmp_path / "noise" / next((tmp_path / "noise").iterdir()).name).write_text("{broken")
    assert probe.noise_floor(base, tuned, s, seeds=10, cache_dir=tmp_path).null in (first.null, other.null)


def test_a_noise_floor_needs_a_lora_pair_and_ten_seeds(planted):
    base_dir, adapter = planted
    lm = probe.load(base_dir)
    with pytest.raises(ValueError, match="needs a LoRA pair"):
        probe.noise_floor(lm, lm, PROMPTS[:1], cache=False)
    base, tuned = probe.load_pair(str(base_dir), adapter=str(adapter))
    with pytest.raises(ValueError, match="at least 10 seeds"):
        probe.noise_floor(base, tuned, PROMPTS[:1], seeds=3, cache=False)
