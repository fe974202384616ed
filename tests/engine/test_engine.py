"""The forward engine: the lazy LM head, its fallback, look-ahead past a sliding window, the cache
argument, and big-model loading (offload, bf16), each against a brute-force reference."""

import warnings

import pytest
import torch

import probe
import probe.engine.forward as fw
from probe.models.tiny import save_tiny
from reference import check_step, next_token_logits, stats


@pytest.fixture(scope="module")
def window_lm(tmp_path_factory):
    """qwen2 with a 4-token sliding window on every layer: prompts here are longer than that."""
    folder = save_tiny(tmp_path_factory.mktemp("qwen2-window"), "qwen2", "bpe",
                       use_sliding_window=True, sliding_window=4, max_window_layers=0)
    return probe.load(folder)


def test_lazy_head_equals_materialized_logits_and_brute_force(lm, monkeypatch):
    prompt, target = "The capital of France is", " Paris, and the capital of Japan is Tokyo."
    lazy = probe.score(lm, prompt, target)
    monkeypatch.setattr(fw, "LAZY_HEAD", False)
    eager = probe.score(lm, prompt, target)
    assert [s.id for s in lazy] == [s.id for s in eager]
    for a, b in zip(lazy, eager):
        assert abs(a.logprob - b.logprob) < 1e-5 and a.rank == b.rank
        assert [t.id for t in a.top] == [t.id for t in b.top]
    rendered = probe.engine.prompts.render(lm, prompt)
    enc = probe.engine.prompts.encode(lm, rendered, target)
    for j, step in enumerate(lazy):
        ref = stats(next_token_logits(lm.model, enc.ids[: enc.n_prompt + j]), step.id)
        check_step(step, ref)


def test_lazy_head_asks_for_one_chunk_of_rows_at_a_time(gpt2_lm, monkeypatch):
    asked = []
    real_rows = fw.Logits.rows

    def spy(self, flat):
        assert self.lazy, "a model whose head probe can apply must not materialize its logits"
        asked.append(len(flat))
        return real_rows(self, flat)

    monkeypatch.setattr(fw.Logits, "rows", spy)
    monkeypatch.setattr(probe.engine.stats, "CHUNK_ELEMENTS", 8 * len(gpt2_lm.tokenizer))  # 8 rows a chunk
    trace = probe.score(gpt2_lm, "Numbers:", " 0 1 2 3 4 5 6 7 8 9 10 17 23 391" * 3)
    assert len(trace) > 30 and asked and max(asked) <= 8
    assert sum(asked) == len(trace)


def test_model_that_rescales_its_logits_falls_back_to_its_own_logits(tiny_dirs):
    """A post-head multiplier probe does not know of: the self-check sees it, numbers stay exact."""
    lm = probe.load(tiny_dirs[("llama", "unigram", False)])

    def halve(module, args, output):
        output.logits = output.logits * 0.5
        return output

    lm.model.register_forward_hook(halve)
    trace = probe.score(lm, "The capital of France is", " Paris.")
    assert getattr(lm.model, "_probe_lazy_head_bad", False)
    enc = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, "The capital of France is"), " Paris.")
    for j, step in enumerate(trace):
        check_step(step, stats(next_token_logits(lm.model, enc.ids[: enc.n_prompt + j]), step.id))


def test_generation_passes_the_cache_under_the_name_the_model_declares(gpt2_lm):
    import inspect

    params = inspect.signature(gpt2_lm.model.forward).parameters
    expected = "cache" if "cache" in params else "past_key_values"
    assert fw.cache_argument(gpt2_lm.model) == expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe.generate(gpt2_lm, "Hello", max_new_tokens=4, watch=["The capital"])
    assert not [w for w in caught if "past_key_values" in str(w.message)]


def _watch_reference(lm, ids, watch_ids):
    total = 0.0
    for j, t in enumerate(watch_ids):
        total += float(torch.log_softmax(next_token_logits(lm.model, ids + watch_ids[:j]), -1)[t])
    return float(torch.tensor(total).exp())


def test_multi_token_watch_past_a_sliding_window_equals_brute_force(window_lm):
    lm = window_lm
    prompt = "The capital of France is Paris. The capital of Japan is"
    watch = " Tokyo. The capital"
    g = probe.generate(lm, prompt, max_new_tokens=6, watch=[watch, " Paris"])
    ids = list(lm.tokenizer(prompt)["input_ids"])
    assert len(ids) > 2 * lm.model.config.sliding_window
    w_ids = probe.engine.generation._watch_ids(lm, probe.engine.prompts.render(lm, prompt), watch)
    assert len(w_ids) > 1
    for step in g:
        ref = _watch_reference(lm, ids, w_ids)
        assert abs(step.watch[watch] - ref) <= 1e-5 + 1e-4 * ref, (step.index, step.watch[watch], ref)
        ids.append(step.id)
    # and the generated tokens are the model's own greedy tokens, unaffected by the look-ahead
    plain = probe.generate(lm, prompt, max_new_tokens=6)
    assert [s.id for s in g] == [s.id for s in plain]


def test_lookahead_restores_every_cache_layer(window_lm):
    lm = window_lm
    ids, mask = fw.left_pad([list(lm.tokenizer("The capital of France is Paris. Hello")["input_ids"])],
                            lm.pad_id, lm.device)
    _, past = fw.forward(lm, ids, mask, keep=1, cache=True)
    before = [(layer.keys.clone(), layer.values.clone(), getattr(layer, "cumulative_length", None))
              for layer in past.layers]
    more = torch.tensor([[5, 6, 7]])
    with fw.lookahead(past):
        fw.forward(lm, more, torch.cat([mask, torch.ones_like(more)], 1), keep=3, past=past)
    for layer, (k, v, n) in zip(past.layers, before):
        assert torch.equal(layer.keys, k) and torch.equal(layer.values, v)
        assert getattr(layer, "cumulative_length", None) == n


def test_offloaded_model_gives_the_same_numbers(tiny_dirs, tmp_path):
    """device_map + max_memory: part of the layers lives on disk; every number stays exact."""
    folder = tiny_dirs[("llama", "unigram", False)]
    whole = probe.load(folder)
    split = probe.load(folder, device_map="auto", max_memory={"cpu": "60KB"},
                       offload_folder=str(tmp_path / "offload"))
    where = set(split.model.hf_device_map.values())
    assert "disk" in where, split.model.hf_device_map
    prompt, target = "The capital of France is", " Paris. The capital of Japan is Tokyo."
    a, b = probe.score(whole, prompt, target), probe.score(split, prompt, target)
    for x, y in zip(a, b):
        assert abs(x.logprob - y.logprob) < 1e-5 and x.rank == y.rank
    ga = probe.generate(whole, prompt, max_new_tokens=5, watch=[" Tokyo. The"])
    gb = probe.generate(split, prompt, max_new_tokens=5, watch=[" Tokyo. The"])
    assert [s.id for s in ga] == [s.id for s in gb]
    for x, y in zip(ga, gb):
        assert abs(x.watch[" Tokyo. The"] - y.watch[" Tokyo. The"]) < 1e-5


def test_the_lazy_head_runs_on_a_cache_only_once_verified_and_never_calls_the_model_twice(tiny_dirs):
    from probe.engine.forward import forward, left_pad, lookahead

    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    ids = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, "The capital of France is"), " Paris, of course.").ids
    x, mask = left_pad([ids[:5]], lm.pad_id, lm.device)
    _, past = forward(lm, x, mask, keep=1, cache=True)
    rest = torch.tensor([ids[5:]], device=lm.device)
    full = torch.ones(1, len(ids), dtype=mask.dtype)
    pos = torch.arange(5, len(ids))[None]
    with lookahead(past):  # not verified yet: the model's own logits on a cache
        first, _ = forward(lm, rest, full, keep=len(ids) - 5, past=past, pos=pos)
    assert not first.lazy
    forward(lm, *left_pad([ids], lm.pad_id, lm.device), keep=3)  # verified without a cache
    assert lm.model._probe_lazy_head_ok
    with lookahead(past):
        lazy, _ = forward(lm, rest, full, keep=len(ids) - 5, past=past, pos=pos)
    assert lazy.lazy and torch.allclose(lazy.materialize(), first.materialize(), atol=1e-4)
    lm.model.register_forward_hook(lambda m, a, out: setattr(out, "logits", out.logits * 0.5) or out)
    calls = []
    lm.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    with pytest.raises(RuntimeError, match="no longer reproduces"), lookahead(past):
        forward(lm, rest, full, keep=len(ids) - 5, past=past, pos=pos)
    assert len(calls) == 1  # the cache was extended once, and the model is not called again


def test_a_rescaling_model_gives_exact_watches_and_evidence(tiny_dirs):
    """The hook is there from the start: look-aheads on a cache use the model's own logits."""
    lm = probe.load(tiny_dirs[("llama", "unigram", False)])
    lm.model.register_forward_hook(lambda m, a, out: setattr(out, "logits", out.logits * 0.5) or out)
    d = probe.diagnose(lm, lm, "The capital of France is", expected=" Paris, of course", max_new_tokens=3)
    assert not getattr(lm.model, "_probe_lazy_head_ok", False)  # never verified: never lazy
    enc = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, "The capital of France is"), " Paris, of course")
    assert len(enc.answer_ids) > 2  # the evidence's look-ahead fed tokens on the cache
    for j, step in enumerate(d.run("tuned").expected_trace):
        check_step(step, stats(next_token_logits(lm.model, enc.ids[: enc.n_prompt + j]), step.id))
