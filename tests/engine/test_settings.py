"""One frozen GenerationSettings: validated once, recorded in every trace with the old keys."""

import dataclasses

import pytest

import probe
from probe.engine.generation import RowSpec, generate_rows
from probe.engine.settings import GenerationSettings

OLD_KEYS = {"top_k", "max_new_tokens", "watch", "stop", "do_sample", "temperature", "top_p", "seed", "force"}


@pytest.mark.parametrize("kwargs,match", [
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": 0}, "temperature"),
    ({"top_p": 1.5}, "top_p"), ({"watch": [""]}, "watch"), ({"top_k": -1}, "top_k"),
    ({"stop": ["ok", ""]}, "stop"), ({"max_new_tokens": True}, "max_new_tokens"),
])
def test_bad_settings_fail_once_with_the_argument_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GenerationSettings(**kwargs)
    with pytest.raises(TypeError, match="seed"):
        GenerationSettings(seed="1")


def test_settings_are_frozen_and_normalized():
    s = GenerationSettings(watch="{", stop=["a", "b"])
    assert s.watch == ("{",) and s.stop == ("a", "b") and s.stops == ["a", "b"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 3
    assert s.sampled(7).do_sample and s.sampled(7).seed == 7 and not s.sampled(None).do_sample


def test_traces_record_the_same_settings_keys_as_before(gpt2_lm):
    t = probe.generate(gpt2_lm, "Hello", 3, "", ["a"], ["zz"], True, 0.9, 0.8, 5, 2)  # positional, as before
    assert set(t.settings) == OLD_KEYS
    assert t.settings == {"top_k": 2, "max_new_tokens": 3, "watch": ["a"], "stop": ["zz"], "do_sample": True,
                          "temperature": 0.9, "top_p": 0.8, "seed": 5, "force": ""}
    same = generate_rows(gpt2_lm, [RowSpec(prompt="Hello")], settings=GenerationSettings(
        max_new_tokens=3, top_k=2, watch=("a",), stop=("zz",), do_sample=True, temperature=0.9, top_p=0.8,
        seed=5))[0]
    assert same.ids == t.ids and same.settings == t.settings


def test_fan_out_continues_one_prefill_as_if_each_ran_alone(gpt2_lm):
    specs = [RowSpec(prompt="Hello"), RowSpec(prompt="The sea is", force=" very")]
    got = generate_rows(gpt2_lm, specs, max_new_tokens=4, fan_out=[[None, 1, 2], [3]])
    alone = [probe.generate(gpt2_lm, "Hello", 4), probe.generate(gpt2_lm, "Hello", 4, do_sample=True, seed=1),
             probe.generate(gpt2_lm, "Hello", 4, do_sample=True, seed=2),
             probe.generate(gpt2_lm, "The sea is", 4, force=" very", do_sample=True, seed=3)]
    assert [t.ids for t in got] == [t.ids for t in alone]
    assert [t.settings["seed"] for t in got] == [None, 1, 2, 3]
    for a, b in zip(got, alone):
        assert a.steps[-1].logprob == pytest.approx(b.steps[-1].logprob, abs=1e-4)
        assert a.steps[-1].sampled_prob == pytest.approx(b.steps[-1].sampled_prob, abs=1e-5) \
            if b.steps[-1].sampled_prob is not None else a.steps[-1].sampled_prob is None
    with pytest.raises(ValueError, match="fan_out"):
        generate_rows(gpt2_lm, specs, fan_out=[[None]])
