"""masks.tokenize against TRL 1.16's own SFTTrainer: the same input_ids and the same loss mask.

Each case builds the trainer's dataset with TRL's code (``SFTTrainer(...).train_dataset``: its
ChatML conversion, EOS, tokenization, masks, truncation and the drop of fully masked examples;
no training step) and compares it token for token with probe's tokenization of the record.
The first token is left out of the comparison: its label never enters the loss (the model
shifts labels by one), and probe never scores it.
"""

import copy
import types

import pytest
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
from trl.chat_template_utils import qwen2_5_chat_template
from trl.data_utils import maybe_convert_to_chatml

import probe
from probe.data.records import BadRecord
from probe.models.tiny import bpe_tokenizer, tiny_model, unigram_tokenizer
from probe.train.masks import MAX_LENGTH, parse, tokenize

# ChatML marked as TRL's training templates mark it: the content and what closes the turn.
MARKED = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
          "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>\n{% endgeneration %}"
          "{% else %}{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PLAIN = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GPT_MARKED = MARKED.replace("m['role'] == 'assistant'", "m['role'] in ['assistant', 'gpt']")

GEN_THINK = PLAIN.replace("<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think></think>{% endif %}")
# Lines the "merges" tokenizers also learn from, so that tokens merge across the boundaries below.
MERGE_LINES = ["首都是北京。北京是首都。", "Hello 👋🏽 world! 👋🏽 hi", "Answer: Paris. Answer: Tokyo.", "List:\n\nred",
               "The cafe\u0301 is open. re\u0301sume\u0301 cafe\u0301 e\u0301te\u0301 ne\u0301 fe\u0301e"]


def _chat(*turns):
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(turns)]


# (record, tokenizer): the prompt's end and the completion's start make one token there
# (bpe: byte-level BPE; unigram: Metaspace + Unigram, which adds a BOS).
PROMPT_COMPLETION = {
    "space": ({"prompt": "Answer: ", "completion": "Paris"}, "bpe"),
    "space-sentence": ({"prompt": "The capital of France is ", "completion": "Paris."}, "bpe"),
    "cjk": ({"prompt": "首都是北", "completion": "京"}, "bpe-merges"),
    "cjk-bos": ({"prompt": "首都是北", "completion": "京"}, "unigram-merges"),
    "emoji": ({"prompt": "Hello 👋", "completion": "🏽 world"}, "bpe-merges"),
    "combining-bos": ({"prompt": "The cafe", "completion": "\u0301 is open"}, "unigram-merges"),
    "newline-bos": ({"prompt": "List:\n", "completion": "\nred"}, "unigram-merges"),
    # the template renders the prompt alone (with its generation prompt) unlike the prompt followed
    # by the completion (Gemma 4's empty thought block): TRL starts at the common prefix
    "chat-generation-prompt": ({"prompt": [{"role": "user", "content": "hi"}],
                                "completion": [{"role": "assistant", "content": "hello"}]}, "bpe"),
}
CHATS = {
    "one-letter": _chat("What is the first letter?", "a"),
    "blank-lines": _chat("Say nothing but two newlines.", "\n\n"),
    "empty": _chat("Say nothing.", ""),
    "spaces": _chat("Say some spaces.", "   "),
    "multi-turn": _chat("What is the capital of France?", "Paris, of course.", "And Japan?", "a"),
    "empty-last": _chat("What is the capital of France?", "Paris.", "And Japan?", ""),
}


@pytest.fixture(scope="module")
def families(tiny_dirs, tmp_path_factory):
    """name -> (what probe tokenizes with, TRL's tokenizer, a model for TRL's trainer, its output_dir)."""
    out, folder_out = {}, str(tmp_path_factory.mktemp("trl"))
    for arch, kind in (("gpt2", "bpe"), ("llama", "unigram")):
        folder = tiny_dirs[(arch, kind, True)]
        out[kind] = (probe.load(folder), AutoTokenizer.from_pretrained(folder),
                     AutoModelForCausalLM.from_pretrained(folder), folder_out)
    for make, size, kind in ((bpe_tokenizer, 700, "bpe-merges"), (unigram_tokenizer, 400, "unigram-merges")):
        tok = make(size, chat=True, extra=MERGE_LINES)
        lm = types.SimpleNamespace(tokenizer=copy.deepcopy(tok), _aux={})  # what masks.tokenize reads
        out[kind] = (lm, tok, tiny_model("llama", len(tok)), folder_out)
    return out


def _trl(family, record, template=None, **config):
    """(input_ids, loss mask) of ``record`` as TRL's SFTTrainer prepares it; None if it drops it."""
    _, tok, model, folder = family
    tok.chat_template = template
    args = SFTConfig(output_dir=folder, report_to=[], use_cpu=True, **config)
    rows = list(SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([record]),
                           processing_class=tok).train_dataset)
    if not rows:
        return None
    return list(rows[0]["input_ids"]), [label != -100 for label in rows[0]["labels"]]


def _probe(family, record, template=None, mode=None, max_length=None):
    lm = family[0]
    saved = lm.tokenizer.chat_template
    lm.tokenizer.chat_template = template
    try:
        return tokenize(lm, parse(record), mode, max_length=max_length)
    except BadRecord:
        return None
    finally:
        lm.tokenizer.chat_template = saved


def _same(t, trl):
    assert trl is not None and t is not None
    ids, mask = trl
    assert t.ids == ids
    assert t.mask[1:] == mask[1:], [(i, a, b) for i, (a, b) in enumerate(zip(t.mask, mask)) if a != b]


@pytest.mark.parametrize("case", sorted(PROMPT_COMPLETION))
def test_completion_starts_where_the_trainers_does(families, case):
    record, kind = PROMPT_COMPLETION[case]
    template = GEN_THINK if isinstance(record["prompt"], list) else None
    _same(_probe(families[kind], record, template), _trl(families[kind], record, template))


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
@pytest.mark.parametrize("case", sorted(CHATS))
def test_assistant_mask_is_the_trainers_with_and_without_markers(families, kind, case):
    """Unmarked ChatML scores what the marked one scores on the same text (TRL refuses an
    unmarked template it has no training variant of, so TRL runs the marked one), and TRL's own
    Qwen2.5 template, which it swaps for its training variant, is scored as TRL scores it."""
    record = {"messages": CHATS[case]}
    trl = _trl(families[kind], record, MARKED, assistant_only_loss=True)
    _same(_probe(families[kind], record, MARKED, "assistant"), trl)
    _same(_probe(families[kind], record, PLAIN, "assistant"), trl)
    qwen = _trl(families[kind], record, qwen2_5_chat_template, assistant_only_loss=True)
    _same(_probe(families[kind], record, qwen2_5_chat_template, "assistant"), qwen)


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
@pytest.mark.parametrize("case", sorted(CHATS))
def test_last_assistant_is_the_trainers_mask_of_the_last_turn(families, kind, case):
    """mask="last_assistant": what TRL trains on with the conversation before the last turn as
    the prompt, the last turn as the completion, and assistant_only_loss (both masks apply);
    the same with the marked and the unmarked template."""
    msgs = CHATS[case]
    trl = _trl(families[kind], {"prompt": msgs[:-1], "completion": msgs[-1:]}, MARKED, assistant_only_loss=True)
    _same(_probe(families[kind], {"messages": msgs}, MARKED, "last_assistant"), trl)
    _same(_probe(families[kind], {"messages": msgs}, PLAIN, "last_assistant"), trl)


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_sharegpt_is_scored_as_the_trainer_renders_it(families, kind):
    record = {"conversations": [{"from": "human", "value": "What is the capital of France?"},
                                {"from": "gpt", "value": "Paris."}, {"from": "human", "value": "Japan?"},
                                {"from": "gpt", "value": "Tokyo."}]}
    _same(_probe(families[kind], record, PLAIN), _trl(families[kind], record, PLAIN))
    # TRL refuses assistant_only_loss on from/value data, and its marked template marks no "gpt" turn
    with pytest.raises(ValueError, match="not conversational"):
        _trl(families[kind], record, MARKED, assistant_only_loss=True)
    converted = maybe_convert_to_chatml(copy.deepcopy(record))  # TRL's conversion: roles kept
    assert [m["role"] for m in converted["messages"]] == ["human", "gpt", "human", "gpt"]
    with pytest.raises(RuntimeError, match="no assistant tokens"):
        _trl(families[kind], converted, MARKED, assistant_only_loss=True)
    # probe's assistant mask scores the gpt turns as a template marking them would
    trl = _trl(families[kind], converted, GPT_MARKED, assistant_only_loss=True)
    _same(_probe(families[kind], record, PLAIN, "assistant"), trl)
    _same(_probe(families[kind], record, MARKED, "assistant"), trl)


LONG = "The quick brown fox jumps over the lazy dog. " * 40


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
@pytest.mark.parametrize("case", ["text", "completion", "chat", "prompt-fills"])
def test_truncation_is_the_trainers(families, kind, case):
    record = {"text": {"text": LONG}, "completion": {"prompt": "Q: ", "completion": LONG},
              "chat": {"messages": _chat("Say it.", LONG)},
              "prompt-fills": {"prompt": LONG, "completion": "Paris"}}[case]
    template = PLAIN if case == "chat" else None
    mode = "assistant" if case == "chat" else None
    trl = _trl(families[kind], record, MARKED if case == "chat" else None, max_length=64,
               assistant_only_loss=case == "chat")
    t = _probe(families[kind], record, template, mode, max_length=64)
    if case == "prompt-fills":  # nothing to score in the first 64 tokens: the trainer drops it
        assert trl is None and t is None
        return
    assert t.cut > 0 and len(t.ids) == 64
    _same(t, trl)


def test_the_default_max_length_is_the_trainers(tmp_path):
    assert MAX_LENGTH == SFTConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True).max_length


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_token_kinds_come_from_the_same_spans(families, kind):
    """The answer "a" is text and the role header around it template/special, marked or not
    (searching the rendering for "a" found the one in "assistant")."""
    for template in (PLAIN, MARKED):
        t = _probe(families[kind], {"messages": CHATS["one-letter"]}, template, "all")
        answer = t.rendered.rindex("\na<|im_end|>") + 1
        header = t.rendered.rindex("<|im_start|>assistant\n")
        by_char = {}
        for k, (a, b) in zip(t.kinds, t.spans):
            for c in range(a, b):
                by_char.setdefault(c, set()).add(k)
        assert by_char[answer] == {"text"}
        assert all(by_char[c] <= {"special", "template"} for c in range(header, answer - 1))
        assert "text" not in by_char[header + len("<|im_start|>")]  # the "a" of "assistant"
