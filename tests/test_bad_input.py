import pytest

import probe
from probe.models.tiny import save_tiny


def test_empty_target_is_refused(raw_lm):
    with pytest.raises(ValueError, match="empty"):
        probe.score(raw_lm, "a", "")


def test_non_string_inputs_are_type_errors(raw_lm):
    with pytest.raises(TypeError, match="target"):
        probe.score(raw_lm, "a", 3)
    with pytest.raises(TypeError, match="prompt"):
        probe.score(raw_lm, 3, "a")
    with pytest.raises(TypeError, match="prompt"):
        probe.generate(raw_lm, None)


def test_empty_raw_prompt_without_bos_is_refused(tmp_path, gpt2_lm):
    tok = gpt2_lm.tokenizer
    import copy
    no_bos = copy.deepcopy(tok)
    no_bos.bos_token = None
    lm = probe.load((gpt2_lm.model, no_bos))
    with pytest.raises(ValueError, match="no BOS token"):
        probe.score(lm, "", "hello")
    with pytest.raises(ValueError, match="no BOS token"):
        probe.generate(lm, "")
    assert len(probe.score(lm, "x", " hello")) >= 1  # a non-empty prompt is fine


def test_too_long_input_names_both_lengths(tmp_path):
    lm = probe.load(save_tiny(tmp_path, "gpt2", "bpe", n_positions=16))
    with pytest.raises(ValueError, match=r"prompt \(\d+ tokens\) \+ answer \(\d+ tokens\).*16 tokens"):
        probe.score(lm, "The capital of France is " * 3, " Paris and Tokyo and Rome")


def test_message_lists_need_a_chat_model(raw_lm, chat_lm):
    with pytest.raises(ValueError, match="chat"):
        probe.score(raw_lm, [{"role": "user", "content": "hi"}], "x")
    with pytest.raises(ValueError, match="role"):
        probe.score(chat_lm, [{"content": "hi"}], "x")
    with pytest.raises(ValueError, match="system"):
        probe.score(raw_lm, "hi", " x", system="be nice")
    with pytest.raises(ValueError, match="chat template"):
        probe.load((raw_lm.model, raw_lm.tokenizer), chat=True)


def test_bad_top_k(raw_lm):
    with pytest.raises(ValueError, match="top_k"):
        probe.score(raw_lm, "a", " b", top_k=-1)
