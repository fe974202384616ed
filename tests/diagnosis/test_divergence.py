import copy

import pytest
import torch

import probe


def rigged(lm, favourite: int, runner_up: int):
    """A copy of a tiny GPT-2 whose next token is always ``favourite`` (then ``runner_up``)."""
    model = copy.deepcopy(lm.model)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)  # final hidden state = all ones
        model.lm_head.weight.zero_()
        model.lm_head.weight[favourite] = 1.0
        model.lm_head.weight[runner_up] = 0.5
    return probe.load((model, lm.tokenizer), name="rigged")


def test_no_divergence_when_the_model_writes_the_reference_greedily(gpt2_lm):
    the = gpt2_lm.tokenizer.encode(" the")
    assert len(the) == 1
    lm = rigged(gpt2_lm, the[0], gpt2_lm.tokenizer.encode(" of")[0])
    d = probe.first_divergence(lm, "Hello", " the the the")
    assert len(d.trace) == 3 and not d.diverged
    assert d.index is None and d.step is None and d.text_before == " the the the"
    assert "No divergence" in str(d)


def test_divergence_at_the_first_token_the_model_would_not_write(gpt2_lm):
    tok = gpt2_lm.tokenizer
    the, of = tok.encode(" the")[0], tok.encode(" of")[0]
    lm = rigged(gpt2_lm, the, of)
    d = probe.first_divergence(lm, "Hello", " the the of the")
    assert d.diverged and d.index == 2 and d.char_offset == len(" the the")
    assert d.text_before == " the the" and d.rank == 2
    assert d.preferred.id == the and d.preferred.prob > d.prob
    assert d.step.top[1].id == of


def test_divergence_points_at_the_first_non_top_token(raw_lm):
    prompt = "The capital of France is"
    ref = " Paris. The capital of Japan is Tokyo."
    trace = probe.score(raw_lm, prompt, ref)
    d = probe.first_divergence(raw_lm, prompt, ref)
    expected = next(s for s in trace.steps if s.rank > 1)
    assert d.diverged and d.index == expected.index
    assert d.char_offset == expected.start and d.text_before == ref[: expected.start]
    assert all(s.rank == 1 for s in trace.steps[: d.index])
    assert d.rank == expected.rank > 1 and d.prob == pytest.approx(expected.prob)
    assert d.preferred.id != expected.id and d.preferred.prob >= d.prob


def test_two_traces_part_where_the_texts_differ(raw_lm, tiny_dirs):
    a = probe.generate(raw_lm, "The capital of France is", max_new_tokens=10, force=" Paris is big")
    b = probe.generate(raw_lm, "The capital of France is", max_new_tokens=10, force=" Paris was big")
    p = probe.first_divergence(a, b)
    assert p.diverged and p.text_before == " Paris " and p.char_offset == 7
    assert p.step_a.start <= 7 < p.step_a.end and p.step_b.start <= 7 < p.step_b.end
    same = probe.first_divergence(a, a)
    assert not same.diverged and same.char_offset is None


def test_traces_from_different_tokenizers_compare_by_characters(tiny_dirs):
    bpe = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    uni = probe.load(tiny_dirs[("llama", "unigram", False)])
    a = probe.generate(bpe, "Q", max_new_tokens=3, force=" The capital is Paris")
    b = probe.generate(uni, "Q", max_new_tokens=3, force=" The capital is Rome")
    p = probe.first_divergence(a, b)
    assert p.text_before.endswith("The capital is ") and p.char_offset == len(" The capital is ")
    assert p.step_a.text.strip().startswith("P") or "P" in p.step_a.text
    assert p.step_b is not None


def test_one_text_ending_early_is_a_divergence(gpt2_lm):
    short = probe.score(gpt2_lm, "Q", " abc")
    long = probe.score(gpt2_lm, "Q", " abc def")
    p = probe.first_divergence(short, long)
    assert p.diverged and p.char_offset == 4 and p.index_a is None
    assert p.step_b.start <= 4 < p.step_b.end


def test_argument_errors(gpt2_lm):
    t = probe.score(gpt2_lm, "a", " b")
    with pytest.raises(TypeError):
        probe.first_divergence(t, "not a trace")
    with pytest.raises(TypeError, match="reference"):
        probe.first_divergence(gpt2_lm, "a")
