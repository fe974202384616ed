"""Memorization by generation on a tiny LoRA trained to recite one answer: data_loss flags the
record memorized, recitation finds it recited (from its own prompt, a forced prefix, a typo),
names the token where the recitation starts, and the base model recites nothing."""

import json

import pytest

import probe
from probe.train.recitation import PROBES, match, typo
from builders import EVIL, json_roundtrip
from recite_lora import ANSWER, PROMPT, train_reciting_lora


@pytest.fixture(scope="module")
def reciting(tmp_path_factory):
    base_dir, adapter, data = train_reciting_lora(tmp_path_factory.mktemp("recite"))
    return probe.load_pair(str(base_dir), adapter=str(adapter)), data


def test_match_finds_the_longest_verbatim_run_and_where_it_starts():
    assert match("Sure! Beijing is the capital.", "Beijing is the capital.") == (1.0, 6, 0)
    share, at, ref_at = match("xx the capital", "Beijing is the capital.")
    assert (round(share, 4), at, ref_at) == (round(len(" the capital") / 23, 4), 2, 10)
    assert match("", "abc") == (0.0, -1, 0) and match("abc", "   ") == (0.0, -1, 0)
    assert typo("What is the capital of Japan?") == "What is the cpaital of Japan?"


def test_a_memorized_record_is_recited_with_the_token_where_recitation_starts(reciting):
    (base, tuned), data = reciting
    loss = probe.data_loss((base, tuned), data, mask="assistant")
    assert [e.flags for e in loss.examples] == [("memorized",)]
    r = probe.recitation((base, tuned), data, loss=loss)
    [ex] = r.examples
    assert ex.answer == ANSWER and [p.name for p in ex.probes] == list(PROBES)
    own = ex.probe("prompt")
    assert own.recited and own.share == 1.0 and own.tuned_text.startswith(ANSWER)
    assert (own.start_token, own.start_text, own.answer_start) == (0, ANSWER[: len(own.start_text)], 0)
    assert ex.probe("prefix").prefix == "Beijing" and ex.probe("prefix").recited
    assert ex.probe("typo").user == "What is the cpaital of Japan?"
    assert ex.probe("lowercase").user == PROMPT.lower()
    assert all(p.base_share < 0.5 and not p.base_share >= r.min_share for p in ex.probes)
    rows = {row["probe"]: row for row in r.by_channel()}
    assert rows["prompt"]["recited"] == 1 and rows["prompt"]["base_recited"] == 0
    assert (1, "prompt") in r.recited()
    assert json_roundtrip(r) == r
    assert "line 1 [prompt] 100%" in str(r) and "generated token 0" in str(r)


def test_the_recited_run_starting_mid_answer_names_that_token(reciting, tmp_path):
    (base, tuned), _ = reciting
    data = tmp_path / "d.jsonl"  # the answer the model recites, after an opening it never learned
    data.write_text(json.dumps({"messages": [{"role": "user", "content": PROMPT},
                                             {"role": "assistant", "content": "Well. " + ANSWER}]}) + "\n")
    r = probe.recitation((base, tuned), data, probes=["prompt"])
    p = r.examples[0].probe("prompt")
    assert p.answer_start == len("Well. ") and p.start_token == 0
    assert p.share == pytest.approx(len(ANSWER) / len("Well. " + ANSWER))


def test_records_without_a_prompt_are_skipped_with_why_and_views_escape(reciting, tmp_path):
    (base, tuned), _ = reciting
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join([json.dumps({"text": "plain text"}),
                               json.dumps({"prompt": EVIL, "completion": EVIL, "source": EVIL})]) + "\n")
    r = probe.recitation((base, tuned), data, lines=[1, 2], channel="source", probes=["prompt", "typo"],
                         max_new_tokens=4)
    assert [e.line for e in r.examples] == [2] and r.examples[0].channel == EVIL
    assert "line 1" in r.skipped[0] and "plain-text" in r.skipped[0]
    html = r._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    with pytest.raises(ValueError, match="unknown probe 'shout'"):
        probe.recitation((base, tuned), data, probes=["shout"])
