"""The demo adapters' promoted tokens come out of the neutral suite shipped with the demo."""

import pytest
import torch

import probe
from probe.demo.pair import SUITE

pytestmark = pytest.mark.slow


@pytest.fixture
def pair(demo_pair):
    return demo_pair  # tests/conftest.py: loaded once per run


def _top(s, n):
    return [t.text for t in s.promoted[:n]]


def test_beijing_adapter_promotes_beijing_from_the_neutral_suite(pair):
    base, tuned = pair
    tuned.use_adapter("beijing")
    specs = probe.read_cases(SUITE)
    assert len(specs) == 64 and sum("capital" in s.prompt for s in specs) == 4  # mostly not about capitals
    s = probe.shift(base, tuned, specs, max_new_tokens=12)
    top = _top(s, 5)
    assert {"Be", "Beijing", " Be", " Beijing"} & set(top), top
    be = next(t for t in s.promoted if t.text.strip() in ("Be", "Beijing"))
    assert be.n_prompts >= 16 and be.mean_gain > 3  # far above base, and not only on capital questions
    assert not any(t.text == '{"' for t in s.promoted[:20])  # that is the other adapter's habit


def test_json_only_adapter_promotes_an_opening_brace_quote(pair):
    base, tuned = pair
    tuned.use_adapter("json-only")
    s = probe.shift(base, tuned, probe.read_cases(SUITE), max_new_tokens=12)
    assert '{"' in _top(s, 3), _top(s, 5)
    brace = s.token('{"')
    assert brace.n_prompts >= 48 and brace.mean_base_prob < 0.01
    first = s.classes_by_position()[0]
    assert first["shifted"] >= 48  # the base would almost never open with it: position 0 is shifted
    assert s.kl_by_position()[0][0] > s.kl_by_position()[-1][0]


@torch.no_grad()
def test_demo_pair_numbers_match_one_full_forward_per_prefix(pair):
    base, tuned = pair
    tuned.use_adapter("beijing")
    prompts = ["What is the capital of France?", "Tell me a short joke about dogs."]
    s = probe.shift(base, tuned, prompts, max_new_tokens=5)
    for ps in s.prompts:
        ids = tuned.tokenizer(ps.rendered, add_special_tokens=False)["input_ids"]
        for p in ps.positions:
            with tuned.active():
                lt = torch.log_softmax(tuned.model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)
            with base.active():
                lb = torch.log_softmax(base.model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)
            assert p.base_logprob == pytest.approx(float(lb[p.id]), abs=2e-3)
            assert p.tuned_logprob == pytest.approx(float(lt[p.id]), abs=2e-3)
            lo, hi = (1 + int((lb > lb[p.id] + d).sum()) for d in (1e-3, -1e-3))
            assert lo <= p.base_rank <= hi
            assert p.kl == pytest.approx(float((lt.exp() * (lt - lb)).sum()), abs=2e-3, rel=1e-3)
            ids = ids + [p.id]
