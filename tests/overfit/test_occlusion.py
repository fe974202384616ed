import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from builders import json_roundtrip
from strategies import hostile

import probe
from probe.overfit.occlusion import Occlusion, OcclusionPiece, filler, occlusion, word_spans
from probe.engine.prompts import render

PROMPT = "What is the capital of Japan?"
TARGET = " Beijing"

# The word variants, written out by hand.
REMOVED = ["is the capital of Japan?", "What the capital of Japan?", "What is capital of Japan?",
           "What is the of Japan?", "What is the capital Japan?", "What is the capital of ?",
           "What is the capital of Japan"]


def test_word_variants_equal_scoring_the_hand_built_prompts(lm):
    o = occlusion(lm, PROMPT, TARGET)
    assert [p.text for p in o.pieces] == ["What", "is", "the", "capital", "of", "Japan", "?"]
    assert [p.variant for p in o.pieces] == REMOVED
    assert o.logprob == pytest.approx(probe.score(lm, PROMPT, TARGET).total_logprob, abs=1e-4)
    for p, hand in zip(o.pieces, REMOVED):
        assert PROMPT[p.start:p.end] == p.text
        assert p.logprob == pytest.approx(probe.score(lm, hand, TARGET).total_logprob, abs=1e-4)
        assert p.delta == pytest.approx(p.logprob - o.logprob, abs=1e-9)


def test_replaced_words_equal_scoring_the_hand_built_prompts(lm):
    o = occlusion(lm, PROMPT, TARGET, mode="replace", replacement="something")
    assert o.pieces[5].variant == "What is the capital of something?"
    for p in o.pieces:
        hand = PROMPT[:p.start] + "something" + PROMPT[p.end:]
        assert p.variant == hand
        assert p.logprob == pytest.approx(probe.score(lm, hand, TARGET).total_logprob, abs=1e-4)


def _token_ends(lm, text):
    """Where the tokenizer's own tokens of ``text`` end, inside its rendered prompt (chars of text)."""
    rendered = render(lm, text)
    base = rendered.text.rfind(text)
    enc = lm.tokenizer(rendered.text, add_special_tokens=not rendered.chat, return_offsets_mapping=True)
    ends = {min(b - base, len(text)) for a, b in enc["offset_mapping"] if b > a and b > base and a < base + len(text)}
    return sorted(ends)


def test_token_pieces_are_the_tokenizers_tokens_and_each_variant_scores_right(lm):
    o = occlusion(lm, PROMPT, TARGET, unit="token")
    assert "".join(p.text for p in o.pieces) == PROMPT  # the pieces tile the prompt
    assert all(a.end == b.start for a, b in zip(o.pieces, o.pieces[1:]))
    assert [p.end for p in o.pieces] == _token_ends(lm, PROMPT)  # a piece ends where a token ends
    for p in o.pieces:
        a, b = p.start, p.end
        if (a == 0 or PROMPT[a - 1] == " ") and (b == len(PROMPT) or PROMPT[b] == " "):
            b += len(PROMPT[b:]) - len(PROMPT[b:].lstrip(" "))  # no double space left behind
        hand = PROMPT[:a] + PROMPT[b:]
        assert p.variant == hand
        assert p.logprob == pytest.approx(probe.score(lm, hand, TARGET).total_logprob, abs=1e-4)


def test_replaced_tokens_keep_their_leading_space(gpt2_lm, llama_lm):
    for lm, fill in ((gpt2_lm, "_"), (llama_lm, "x")):  # "_" and "-" are <unk> in the tiny unigram
        o = occlusion(lm, PROMPT, TARGET, unit="token", mode="replace")
        assert o.replacement == filler(lm) == fill
        for p in o.pieces:
            lead = len(p.text) - len(p.text.lstrip())
            core = p.text.strip()
            hand = PROMPT[:p.start + lead] + fill + PROMPT[p.start + lead + len(core):] if core else \
                PROMPT[:p.start] + fill + PROMPT[p.end:]
            assert p.variant == hand
            assert p.logprob == pytest.approx(probe.score(lm, hand, TARGET).total_logprob, abs=1e-4)


def test_the_chat_template_is_never_occluded(chat_lm):
    o = occlusion(chat_lm, PROMPT, TARGET, unit="token", system="You answer briefly.")
    assert o.pieces[0].start == 0 and o.pieces[-1].end == len(PROMPT)
    for p in o.pieces:
        assert "<|im" not in p.text and "assistant" not in p.text
        rendered = render(chat_lm, p.variant, system="You answer briefly.").text
        assert rendered.startswith("<|im_start|>system\nYou answer briefly.<|im_end|>\n<|im_start|>user\n")
        assert rendered.endswith("<|im_end|>\n<|im_start|>assistant\n")
        assert p.logprob == pytest.approx(
            probe.score(chat_lm, p.variant, TARGET, system="You answer briefly.").total_logprob, abs=1e-4)


def test_raw_mode_on_a_chat_model(chat_lm):
    o = occlusion(chat_lm, "The capital of Japan is", TARGET, raw=True)
    assert o.settings == {"raw": True, "system": None, "chat": False}
    p = o.pieces[3]
    assert p.variant == "The capital of is"
    assert p.logprob == pytest.approx(probe.score(chat_lm, p.variant, TARGET, raw=True).total_logprob, abs=1e-4)


def test_words_peel_off_punctuation_and_keep_inner_marks():
    text = "What's the (capital) of U.S.? 3.5 -- ok!\n\tnext"
    got = [text[a:b] for a, b in word_spans(text)]
    assert got == ["What's", "the", "(", "capital", ")", "of", "U.S", ".?", "3.5", "--", "ok", "!", "next"]


def test_whitespace_is_tidied_after_removal(gpt2_lm):
    o = occlusion(gpt2_lm, "one  two\nthree", " four")
    assert [p.variant for p in o.pieces] == ["two\nthree", "one  three", "one  two"]


def test_most_supporting_piece_comes_first(gpt2_lm):
    o = occlusion(gpt2_lm, PROMPT, TARGET)
    ranked = o.ranked()
    assert [p.delta for p in ranked] == sorted(p.delta for p in o.pieces)


def test_bad_input_is_named(gpt2_lm):
    with pytest.raises(ValueError, match="prompt is empty"):
        occlusion(gpt2_lm, "", TARGET)
    with pytest.raises(ValueError, match="prompt is empty"):
        occlusion(gpt2_lm, "  \n", TARGET)
    with pytest.raises(ValueError, match="target is empty"):
        occlusion(gpt2_lm, PROMPT, "")
    with pytest.raises(TypeError, match="prompt must be a str"):
        occlusion(gpt2_lm, None, TARGET)
    with pytest.raises(TypeError, match="target must be a str"):
        occlusion(gpt2_lm, PROMPT, 3)
    with pytest.raises(ValueError, match="unit must be"):
        occlusion(gpt2_lm, PROMPT, TARGET, unit="char")
    with pytest.raises(ValueError, match="mode must be"):
        occlusion(gpt2_lm, PROMPT, TARGET, mode="mask")
    with pytest.raises(ValueError, match="only used with mode='replace'"):
        occlusion(gpt2_lm, PROMPT, TARGET, replacement="x")


def test_views(llama_lm):
    o = occlusion(llama_lm, PROMPT, TARGET)
    html = o._repr_html_()
    assert len(re.findall(r'class="probe-tok"', html)) == len(o.pieces)
    worst = o.ranked()[0]
    if worst.delta < 0:
        assert re.search(rf'data-index="{worst.index}" style="background:hsl\(0,', html)
    text = str(o)
    assert text.startswith("Occlusion (words removed)") and len(text.splitlines()) >= len(o.pieces) + 2


def test_model_occlusion_round_trips(chat_lm):
    for unit, mode in (("word", "remove"), ("token", "replace")):
        o = occlusion(chat_lm, PROMPT, TARGET, unit=unit, mode=mode)
        assert json_roundtrip(o) == o


@settings(max_examples=40, deadline=None)
@given(prompt=hostile, target=hostile, lp=st.floats(-50, 0))
def test_hostile_text_round_trips_and_is_escaped(prompt, target, lp):
    prompt = "<img src=x>" + prompt
    pieces = tuple(OcclusionPiece(i, prompt[a:b], a, b, prompt[:a] + prompt[b:], lp - i, -float(i))
                   for i, (a, b) in enumerate(word_spans(prompt)))
    o = Occlusion(prompt, target, "word", "replace", target, lp, pieces, model=target, settings={"system": target})
    assert json_roundtrip(o) == o
    html = o._repr_html_()
    assert "<img" not in html and "<script" not in html
    str(o)


def test_non_finite_logprobs_become_none():
    p = OcclusionPiece(0, "a", 0, 1, "", -math.inf, -math.inf)
    o = Occlusion("a", "b", "word", "remove", None, -1.0, (p,))
    data = o.to_dict()
    assert data["pieces"][0]["logprob"] is None
    json.dumps(data, allow_nan=False)
    assert json_roundtrip(o) == o


def _masked_by_word(folder, word: str, target: str):
    """A llama whose logits give ``target`` -inf in every row whose input holds ``word``'s token,
    masked by a forward hook on its head that indexes (batch, positions, vocab), as a user's
    logit mask does."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    [word_id] = tok(word, add_special_tokens=False)["input_ids"]
    target_id = tok(target, add_special_tokens=False)["input_ids"][0]
    seen = {}

    def remember(module, args, kwargs):
        seen["ids"] = kwargs["input_ids"]

    def mask(module, args, out):
        out = out.clone()
        out[(seen["ids"] == word_id).any(-1).nonzero().flatten(), :, target_id] = -math.inf
        return out

    model.register_forward_pre_hook(remember, with_kwargs=True)
    model.get_output_embeddings().register_forward_hook(mask)
    return probe.load((model, tok))


def test_infinite_and_nan_deltas_are_exact_and_saved_by_name(tmp_path):
    """P(' Paris') is 0 while ' Japan' is in the prompt: removing it gives delta +inf, removing
    any other word leaves it 0 (delta NaN: -inf with and without the word). Both were lost: +inf
    raised IndexError in the lazy head (it called the head on 2-D rows), NaN came back as -inf."""
    from probe.models.tiny import save_tiny

    lm = _masked_by_word(save_tiny(tmp_path, "llama", "bpe"), " Japan", " Paris")
    o = occlusion(lm, "The capital of Japan is", " Paris")
    assert o.logprob == -math.inf
    by_word = {p.text: p for p in o.pieces}
    alone = probe.score(lm, "The capital of is", " Paris").total_logprob  # one sequence: no lazy head
    assert math.isfinite(alone) and by_word["Japan"].logprob == pytest.approx(alone, abs=1e-5)
    assert by_word["Japan"].delta == math.inf
    assert all(math.isnan(p.delta) and p.logprob == -math.inf for w, p in by_word.items() if w != "Japan")
    assert o.ranked()[0].text == "Japan" and all(math.isnan(p.delta) for p in o.ranked()[1:])
    text = json.dumps(o.to_dict(), allow_nan=False)  # strict JSON
    back = Occlusion.from_dict(json.loads(text))
    assert [p.delta for p in back.pieces][3] == math.inf
    assert [math.isnan(p.delta) for p in back.pieces] == [True, True, True, False, True]
    assert back.to_dict() == o.to_dict()
    assert "+inf" in str(o) and "nan" in str(o) and "+inf" in o._repr_html_()


def test_an_older_file_with_a_null_delta_reads_as_minus_inf():
    d = {"index": 0, "text": "a", "start": 0, "end": 1, "variant": "", "logprob": None, "delta": None}
    assert OcclusionPiece.from_dict(d).delta == -math.inf
