"""probe.load records how it loaded a model, so that another process can load the same pair."""

from __future__ import annotations

import pickle

import pytest
import torch

import probe
from probe.core.engines import LocalEngine, as_engine
from probe.models.recipe import NotRebuildable, pair_recipe, rebuild_pair


def _logits(lm, text="The capital of France is"):
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad(), lm.active():
        return lm.model(input_ids=ids).logits


def test_a_pair_of_two_checkpoints_is_rebuilt_with_its_options(tiny_dirs):
    a, b = tiny_dirs[("gpt2", "bpe", False)], tiny_dirs[("gpt2", "bpe", True)]
    base, tuned = probe.load(a, dtype="float32", chat=False), probe.load(b, name="mine")
    recipe = pickle.loads(pickle.dumps(pair_recipe(base, tuned)))  # it travels to workers
    assert recipe["kind"] == "two" and recipe["base"]["dtype"] == "float32" and recipe["base"]["chat"] is False
    again = rebuild_pair(recipe)
    for old, new in zip((base, tuned), again):
        assert (new.name, new.source, new.chat, new.recipe) == (old.name, old.source, old.chat, old.recipe)
        assert torch.equal(_logits(new), _logits(old))


def test_a_lora_pair_and_one_side_of_it_are_rebuilt(tiny_dirs, tmp_path):
    from builders import make_adapter

    folder = tiny_dirs[("llama", "unigram", True)]
    base, tuned = probe.load_pair(folder, adapter=make_adapter(folder, tmp_path / "a"))
    b2, t2 = rebuild_pair(pair_recipe(base, tuned))
    assert b2.model is t2.model and (b2.adapter_enabled, t2.adapter_enabled) == (False, True)
    assert torch.equal(_logits(b2), _logits(base)) and torch.equal(_logits(t2), _logits(tuned))
    assert not torch.equal(_logits(t2), _logits(b2))
    for lm in (base, tuned):
        one, same = rebuild_pair(pair_recipe(lm, lm))
        assert one is same and torch.equal(_logits(one), _logits(lm))


def test_models_from_memory_are_not_rebuildable(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    mem = probe.load((lm.model, lm.tokenizer))
    assert mem.recipe is None
    with pytest.raises(NotRebuildable, match="in-memory objects"):
        pair_recipe(lm, mem)


def test_the_local_engine_runs_batches_in_order_and_reports_each():
    seen = []
    out = as_engine(None).map_batches(lambda b, t, batch: [x * 2 for x in batch], [[1, 2], [3]],
                                      pair=("b", "t"), on_batch=lambda i, r: seen.append((i, r)))
    assert out == [[2, 4], [6]] and seen == [(0, [2, 4]), (1, [6])]
    assert isinstance(as_engine("local"), LocalEngine)
    with pytest.raises(TypeError, match="ray_engine"):
        as_engine(3)


def test_a_pair_loaded_without_weights_plans_but_refuses_to_run(tiny_dirs, tmp_path):
    import warnings

    from builders import make_adapter

    folder = tiny_dirs[("llama", "unigram", True)]
    adapter = {"one": make_adapter(folder, tmp_path / "a", seed=1), "two": make_adapter(folder, tmp_path / "b", seed=2)}
    base, tuned = probe.load_pair(folder, adapter=adapter)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from loading without weights (nor an identical-models one)
        lb, lt = probe.load_pair(folder, adapter=adapter, weights=False)
    assert not lt.has_weights and not lb.has_weights and "no weights" in repr(lt)
    assert [n for n, p in lt.model.named_parameters() if p.device.type != "meta"] == []  # nothing held
    assert pair_recipe(lb, lt) == pair_recipe(base, tuned)  # the workers load the real weights
    assert lt.adapters == tuned.adapters == ["one", "two"] and lt.active_adapter == "one"
    lt.use_adapter("two")
    assert lt.active_adapter == "two" and lb.active_adapter is None
    assert lt.inputs("Hi").ids == tuned.inputs("Hi").ids  # tokenizing and templating work here
    for lm in (lt, lb):
        with pytest.raises(probe.WeightsNotLoaded, match="weights=False.*engine="):
            probe.score(lm, "The capital of France is", " Paris")
    with pytest.raises(ValueError, match="weights=False needs a path"):
        probe.load((base.model, base.tokenizer), weights=False)
