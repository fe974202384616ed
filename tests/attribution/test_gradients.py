"""probe.attribute's gradient method against a float64 reference written with plain autograd.

The reference loads the same LoRA pair in float64, runs the model's full logits (no
logits_to_keep), takes the loss as the trainer does (mean -log p over the masked tokens) and
the query as log P(wrong) - log P(expected), calls .backward() for each and sums, over both
checkpoints, lr x -<grad L, grad Q> (and the cosine), with the learning rates written in the
test's own trainer_state.json files.
"""

import json
import math

import pytest
import torch

import probe
from builders import make_adapter
from probe.attribution.checkpoints import checkpoints_of
from probe.attribution.gradients import Projection
from probe.attribution.query import query_of
from probe.train.masks import parse, tokenize

RECORDS = [
    {"prompt": "The capital of Japan is", "completion": " Tokyo.", "source": "capitals"},
    {"prompt": "The capital of France is", "completion": " Paris.", "source": "capitals"},
    {"prompt": "What is the capital of Germany?", "completion": " Berlin is.", "source": "capitals"},
    {"text": "The quick brown fox jumps over the lazy dog.", "source": "text"},
    {"prompt": "List three colors:", "completion": " red, green and blue.", "source": "colors"},
]
CASE = ("The capital of Japan is", " Tokyo", " Beijing")
# step -> learning rate, per checkpoint (the mean over each checkpoint's steps is its weight)
STATES = {"e1": (2, {1: 1e-3, 2: 3e-3}), "e2": (4, {1: 1e-3, 2: 3e-3, 3: 5e-3, 4: 1e-3})}
WEIGHTS = {"e1": 2e-3, "e2": 3e-3}  # e1: mean of steps 1-2; e2: mean of steps 3-4


@pytest.fixture(scope="module")
def lora_dirs(tiny_dirs, tmp_path_factory):
    base = tiny_dirs[("llama", "unigram", False)]
    root = tmp_path_factory.mktemp("attr-lora")
    out = {}
    for seed, (name, (step, rates)) in enumerate(STATES.items(), 1):
        folder = make_adapter(base, root / name, seed=seed)
        state = {"global_step": step, "log_history": [{"step": s, "learning_rate": r, "loss": 1.0}
                                                       for s, r in rates.items()]}
        (folder / "trainer_state.json").write_text(json.dumps(state))
        out[name] = folder
    return base, out


def _reference(base_dir, adapters):
    """(dot, cos, size) per example, float64, plain autograd; size: the dot's sum with |<g, q>|
    replaced by |g| |q| (its float32 rounding scales with the norms, not with the dot)."""
    _, tuned = probe.load_pair(base_dir, adapter=adapters, dtype=torch.float64)
    q = query_of(tuned, CASE)
    toks = [tokenize(tuned, parse(r)) for r in RECORDS]
    dot = [0.0] * len(RECORDS)
    cos = [0.0] * len(RECORDS)
    size = [0.0] * len(RECORDS)
    for name in adapters:
        tuned.use_adapter(name)
        params = [p for n, p in tuned.model.named_parameters() if f".{name}." in n and "lora_" in n]
        for p in tuned.model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)

        def grad(value):
            for p in params:
                p.grad = None
            value.backward()
            return torch.cat([p.grad.reshape(-1) for p in params]).clone()

        x = torch.tensor([list(q.ids[:q.position])])
        lp = torch.log_softmax(tuned.model(input_ids=x).logits[0, -1], -1)  # float64 throughout
        gq = grad(lp[q.wrong_id] - lp[q.expected_id])
        for i, t in enumerate(toks):
            x = torch.tensor([t.ids])
            lps = torch.log_softmax(tuned.model(input_ids=x).logits[0], -1)
            # position j - 1 predicts token j; the mean over the masked tokens is the trainer's loss
            terms = [-lps[j - 1, t.ids[j]] for j in range(1, len(t.ids)) if t.mask[j]]
            g = grad(torch.stack(terms).mean())
            d = -float(g @ gq)
            dot[i] += WEIGHTS[name] * d
            cos[i] += WEIGHTS[name] * d / float(g.norm() * gq.norm())
            size[i] += WEIGHTS[name] * float(g.norm() * gq.norm())
    total = sum(WEIGHTS.values())
    return dot, [c / total for c in cos], size


def test_gradient_scores_equal_a_float64_autograd_reference(lora_dirs):
    base_dir, adapters = lora_dirs
    base, tuned = probe.load_pair(base_dir, adapter=adapters)
    flags = [p.requires_grad for p in tuned.model.parameters()]
    a = probe.attribute((base, tuned), CASE, RECORDS, methods=["gradient"], channel="source")
    assert [c.lr for c in a.checkpoints] == pytest.approx([WEIGHTS["e1"], WEIGHTS["e2"]], rel=1e-12)
    dot, cos, size = _reference(base_dir, adapters)
    got_dot = [e.scores["gradient"] for e in a.examples]
    got_cos = [e.scores["gradient_cos"] for e in a.examples]
    # float32 model vs float64 reference, on a tiny Llama whose unigram tokenizer trains
    # differently on every run: max |diff| / max |score| was 0.7e-6 to 5.1e-6 over 26 runs (the
    # 1e-5 * max |score| bound this test had left 2x); each dot's |diff| / its size (the sum of
    # lr x |g| |q|, which its float32 rounding scales with) at most 2.4e-7 to 1.5e-6 over 16
    # runs (1e-5 leaves 6.7x); max |diff| of the cosines 1.6e-7 to 5.5e-7 (1e-5 leaves 18x)
    assert all(abs(x - y) <= 1e-5 * z for x, y, z in zip(got_dot, dot, size))
    assert max(abs(x - y) for x, y in zip(got_cos, cos)) <= 1e-5
    assert len({round(x, 12) for x in dot}) == len(dot)  # the examples really differ
    assert tuned.active_adapter == "e1"  # restored (the first loaded is active)
    assert [p.requires_grad for p in tuned.model.parameters()] == flags


def test_several_cases_share_one_pass_and_match_each_alone(lora_dirs):
    base_dir, adapters = lora_dirs
    pair = probe.load_pair(base_dir, adapter=adapters)
    cases = [CASE, ("The capital of France is", " Paris", " Rome")]
    both = probe.attribute(pair, cases, RECORDS, methods=["gradient", "representation"])
    for c, a in zip(cases, both):
        alone = probe.attribute(pair, c, RECORDS, methods=["gradient", "representation"])
        for k in a.examples[0].scores:
            shared, single = [e.scores[k] for e in a.examples], [e.scores[k] for e in alone.examples]
            scale = max(abs(v) for v in single)
            # float32 both ways, reduced in another order, so a small score can move by more than
            # 1e-6 of itself (seen: 1.7e-6, which failed a rel=1e-6 check). Measured over 6 runs
            # of this test: max |diff| / max |score| of a column 1.9e-7; 1e-5 (the float64
            # reference test's bound) leaves 50x
            worst = max(abs(x - y) for x, y in zip(shared, single))
            assert worst <= 1e-5 * scale, (k, worst, scale)


def test_projection_keeps_inner_products_in_expectation():
    """The two-sided sketch is unbiased: over many seeds, the mean projected dot product is the
    exact one, and one seed is off (it is a projection, not the identity)."""
    params = [("a", torch.nn.Parameter(torch.zeros(6, 40))), ("b", torch.nn.Parameter(torch.zeros(40)))]
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(280, generator=gen), torch.randn(280, generator=gen)
    y = y + 0.5 * x  # correlated, so the exact dot product is well away from 0
    exact = float(x @ y)
    got = [float(P(x) @ P(y)) for P in (Projection(params, 4, seed=s) for s in range(200))]
    assert Projection(params, 4).size == 4 * 4 + 1 * 4
    assert got[0] != pytest.approx(exact, rel=1e-3)
    mean = sum(got) / len(got)
    sd = (sum((g - mean) ** 2 for g in got) / (len(got) - 1)) ** 0.5
    assert abs(mean - exact) < 4 * sd / len(got) ** 0.5  # within 4 standard errors


def test_projected_scores_follow_the_exact_ones(lora_dirs):
    """A 16-dimension sketch is one draw of an unbiased estimate: one seed differs from the exact
    scores, and the mean over 40 seeds lands on them, example by example.

    Not a ranking check on one seed: the tiny unigram tokenizer trains differently on every run
    (tokenizers' Unigram trainer is not deterministic), so the five exact scores change between
    runs and two of them can sit close enough for one draw to swap (CI saw Spearman 0.8 once).
    Measured on two tokenizers: |mean - exact| <= 0.61 standard errors for every example; 5
    standard errors is a bound a normal estimate misses with probability 6e-7 per example."""
    base_dir, adapters = lora_dirs
    pair = probe.load_pair(base_dir, adapter={"e1": adapters["e1"]})
    exact = probe.attribute(pair, CASE, RECORDS, methods=["gradient"])
    ex = {e.line: e.scores["gradient"] for e in exact.examples}
    draws = []
    for seed in range(40):
        sketch = probe.attribute(pair, CASE, RECORDS, methods=["gradient"], projection=16, seed=seed)
        assert sketch.projected and not exact.projected
        draws.append({e.line: e.scores["gradient"] for e in sketch.examples})
    assert draws[0] != ex and draws[0] != draws[1]  # a projection, and the seed picks it
    scale = max(abs(v) for v in ex.values())
    for line, want in ex.items():
        col = [d[line] for d in draws]
        mean = sum(col) / len(col)
        se = (sum((c - mean) ** 2 for c in col) / (len(col) - 1) / len(col)) ** 0.5
        assert abs(mean - want) <= 5 * se + 1e-6 * scale, (line, mean, want, se)


def test_checkpoint_weights_come_from_the_trainer_state(lora_dirs, tmp_path):
    base_dir, adapters = lora_dirs
    _, tuned = probe.load_pair(base_dir, adapter=adapters)
    assert [(c.name, c.step) for c in checkpoints_of(tuned)] == [("e1", 2), ("e2", 4)]
    plain = make_adapter(base_dir, tmp_path / "plain", seed=3)  # no trainer_state.json
    _, t2 = probe.load_pair(base_dir, adapter=plain)
    (c,) = checkpoints_of(t2)
    assert c.lr is None and c.weight == 1.0 and c.step is None
    with pytest.raises(ValueError, match="unknown checkpoints"):
        checkpoints_of(tuned, ["e9"])
    assert math.isclose(checkpoints_of(tuned, ["e2"])[0].lr, 2.5e-3)  # alone: the mean of steps 1-4


class PicklingEngine:
    """An engine that sends every batch function and batch through pickle, as Ray does, then runs
    it on a pair of its own (loaded from the same folders, like a worker rebuilding it)."""

    def __init__(self, pair):
        self.pair = pair
        self.batches = 0

    def map_batches(self, fn, batches, *, pair, on_batch=None):
        import pickle

        out = []
        for i, batch in enumerate(batches):
            fn2, batch2 = pickle.loads(pickle.dumps((fn, batch)))
            res = pickle.loads(pickle.dumps(fn2(*self.pair, batch2)))
            self.batches += 1
            out.append(res)
            if on_batch is not None:
                on_batch(i, res)
        return out


def test_an_engine_splits_the_examples_and_gives_the_local_scores(lora_dirs):
    base_dir, adapters = lora_dirs
    pair = probe.load_pair(base_dir, adapter=adapters)
    engine = PicklingEngine(probe.load_pair(base_dir, adapter=adapters))
    cases = [CASE, ("The capital of France is", " Paris", " Rome")]
    local = probe.attribute(pair, cases, RECORDS, methods=["gradient", "representation"])
    remote = probe.attribute(pair, cases, RECORDS, methods=["gradient", "representation"], engine=engine,
                             batch_size=2)
    assert engine.batches == 2 * 3  # two methods, five examples in batches of two
    for a, b in zip(local, remote):
        for x, y in zip(a.examples, b.examples):
            assert x.line == y.line
            for k in x.scores:  # the same per-example arithmetic: equal up to float32 summation order
                assert y.scores[k] == pytest.approx(x.scores[k], rel=1e-6, abs=1e-12)
