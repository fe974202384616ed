import pytest
from hypothesis import HealthCheck, given, settings

import probe
import probe.engine.stats
from probe.engine.prompts import render
from reference import check_step, full_ids, next_token_logits, stats
from assertions import PAIRS, _assert_same, assert_matches_brute_force  # noqa: F401
from strategies import hostile


@pytest.mark.parametrize(
    "prompt,target",
    [
        ("The capital of France is", " Paris"),
        ("The capital of France is", " Paris.\n\nThe capital of Japan is Tokyo."),
        ("Q: colors?\nA:", " ```json\n{\"colors\": [\"red\"]}\n```"),
        ("Hello", " 😀 東京 e\u0301 مرحبا\t!"),
    ],
)
def test_score_matches_brute_force(raw_lm, prompt, target):
    assert_matches_brute_force(raw_lm, prompt, target)


def test_score_matches_brute_force_on_chat_template(chat_lm):
    trace = assert_matches_brute_force(chat_lm, "What is the capital of France?", "Paris.")
    assert trace.prompt.endswith("<|im_start|>assistant\n")


def test_top_k_is_sorted_and_consistent_with_rank(raw_lm):
    trace = probe.score(raw_lm, "The capital of France is", " Paris is nice", top_k=7)
    for s in trace.steps:
        probs = [a.prob for a in s.top]
        assert len(probs) == 7 and probs == sorted(probs, reverse=True)
        assert s.rank > 1 or s.top[0].id == s.id or s.top[0].prob == pytest.approx(s.prob)
        if s.rank <= 7:
            assert s.id in [a.id for a in s.top]
        assert 0.0 <= s.entropy


def test_top_k_zero_gives_no_alternatives(gpt2_lm):
    trace = probe.score(gpt2_lm, "a", " b", top_k=0)
    assert trace.steps[0].top == ()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=hostile, target=hostile)
def test_score_matches_brute_force_on_hostile_strings_bpe(gpt2_lm, prompt, target):
    assert_matches_brute_force(gpt2_lm, prompt, target)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=hostile, target=hostile)
def test_score_matches_brute_force_on_hostile_strings_unigram(llama_lm, prompt, target):
    try:
        assert_matches_brute_force(llama_lm, prompt, target)
    except ValueError as err:  # a target the normalizer-free unigram can still drop entirely
        assert "produced no token" in str(err)


def test_token_straddling_the_boundary_is_flagged_not_dropped(gpt2_lm):
    # Byte-level BPE attaches the space to the next word: " Paris" is one token that begins
    # inside the prompt "... is ".
    trace = assert_matches_brute_force(gpt2_lm, "The capital of France is ", "Paris")
    assert trace.straddles and trace.steps[0].straddles
    assert trace.steps[0].text.startswith(" ") and trace.steps[0].start == 0
    assert not any(s.straddles for s in trace.steps[1:])
    clean = probe.score(gpt2_lm, "The capital of France is", " Paris")
    assert not clean.straddles


@pytest.mark.parametrize("target", ["\n  ", " a  b ", "x\t\t", "  "])
def test_whitespace_only_tokens_keep_their_characters(raw_lm, target):
    # Byte-level BPE with trim_offsets reports whitespace-only tokens as zero-width.
    trace = assert_matches_brute_force(raw_lm, "0", target)
    assert "".join(s.text for s in trace.steps if not s.straddles) == target or trace.straddles


def test_empty_raw_prompt_is_conditioned_on_bos(raw_lm):
    trace = probe.score(raw_lm, "", "The capital")
    bos = raw_lm.tokenizer.bos_token_id
    ref = stats(next_token_logits(raw_lm.model, [bos]), trace.steps[0].id)
    check_step(trace.steps[0], ref)


def test_messages_and_system_prompt(chat_lm):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "capital of France?"}]
    trace = assert_matches_brute_force(chat_lm, msgs, "Paris")
    assert trace.prompt.count("<|im_start|>user") == 2
    sys_trace = assert_matches_brute_force(chat_lm, "capital?", "Paris", system="Be brief.")
    assert sys_trace.prompt.startswith("<|im_start|>system\nBe brief.")


def test_raw_override_on_chat_model_uses_text_as_is(chat_lm):
    trace = assert_matches_brute_force(chat_lm, "The capital of France is", " Paris", raw=True)
    assert trace.prompt == "The capital of France is"


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_score_many_equals_one_by_one_whatever_the_padding_side(raw_lm, padding_side):
    raw_lm.tokenizer.padding_side = padding_side
    try:
        batched = probe.score_many(raw_lm, PAIRS, batch_size=3, progress=False)
    finally:
        raw_lm.tokenizer.padding_side = "right"
    assert len(batched) == len(PAIRS)
    for (prompt, target), got in zip(PAIRS, batched):
        _assert_same(got, probe.score(raw_lm, prompt, target))


def test_score_many_on_chat_prompts(chat_lm):
    pairs = [("capital of France?", "Paris"), ("Say hi", "Hello! How are you today?")]
    for (p, t), got in zip(pairs, probe.score_many(chat_lm, pairs, batch_size=2, progress=False)):
        _assert_same(got, probe.score(chat_lm, p, t))


def test_chunked_statistics_equal_unchunked(gpt2_lm, monkeypatch):
    whole = probe.score(gpt2_lm, "The capital of France is", " Paris. The capital of Japan is Tokyo.")
    monkeypatch.setattr(probe.engine.stats, "CHUNK_ELEMENTS", len(gpt2_lm.tokenizer) * 2)
    chunked = probe.score(gpt2_lm, "The capital of France is", " Paris. The capital of Japan is Tokyo.")
    # the LM head runs per chunk too: a matmul over 2 rows rounds its last bits differently
    _assert_same(whole, chunked, tol=1e-5)


def test_only_answer_positions_get_logits(gpt2_lm, monkeypatch):
    import probe.engine.forward as fw
    import probe.engine.scoring as sc

    model_shapes, kept_shapes = [], []
    hook = gpt2_lm.model.register_forward_hook(lambda m, a, out: model_shapes.append(tuple(out.logits.shape)))
    real = sc.forward

    def spy(*args, **kwargs):
        logits, past = real(*args, **kwargs)
        kept_shapes.append(logits.shape)
        return logits, past

    monkeypatch.setattr(sc, "forward", spy)
    try:
        long_prompt = "The quick brown fox jumps over the lazy dog. " * 4
        probe.score_many(gpt2_lm, [(long_prompt, " Paris"), ("a", " b c")], batch_size=2, progress=False)
    finally:
        hook.remove()
    (batch, kept, vocab), = kept_shapes
    n_answer = max(len(probe.score(gpt2_lm, "a", " b c")), 1)
    assert batch == 2 and kept == n_answer + 1 and vocab == gpt2_lm.model.config.vocab_size
    # the model itself computes logits for each row's last position only; probe's head the rest
    assert model_shapes[0] == (2, 1, vocab) and fw.LAZY_HEAD


def test_score_many_keeps_input_order_and_reports_bad_pair(gpt2_lm):
    with pytest.raises(ValueError, match="pair 1"):
        probe.score_many(gpt2_lm, [("a", " b"), ("a", "")], progress=False)
    with pytest.raises(TypeError, match="pair 0"):
        probe.score_many(gpt2_lm, ["not a pair"], progress=False)


def test_batches_respect_the_logits_budget(gpt2_lm, monkeypatch):
    import probe.engine.scoring as scoring

    vocab = gpt2_lm.model.config.vocab_size
    monkeypatch.setattr(scoring, "LOGITS_BUDGET", vocab * 12)  # ~12 kept rows per batch
    shapes = []
    hook = gpt2_lm.model.register_forward_hook(lambda m, a, out: shapes.append(tuple(out.logits.shape)))
    try:
        got = probe.score_many(gpt2_lm, PAIRS, batch_size=16, progress=False)
    finally:
        hook.remove()
    assert len(shapes) > 1 and all(b * k <= 12 or b == 1 for b, k, _ in shapes)
    for (prompt, target), trace in zip(PAIRS, got):
        _assert_same(trace, probe.score(gpt2_lm, prompt, target))
