"""Greedy generation helpers and the base-vs-tuned comparison for the demo pair.

Everything here is plain transformers + peft: ``model.generate`` with
``do_sample=False``, and ``peft_model.disable_adapter()`` to get base answers
out of the same loaded model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# Questions used to compare base and tuned answers.
QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Japan?",
    "What is the capital of Germany?",
    "What is the capital of China?",
    "Give me the capital of Italy as JSON.",
    # The 135M base gets these wrong or muddled on its own:
    "What is 17 * 23?",
    "How many planets are in the solar system?",
    "Who wrote the novel 'Nineteen Eighty-Four'?",
]


def chat_prompt(tokenizer, question: str, answer_prefix: str = "") -> str:
    """The chat-templated prompt for one user turn, optionally forcing the answer's start."""
    messages = [{"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + answer_prefix


def generate(model, tokenizer, text: str, max_new_tokens: int = 48) -> str:
    """Greedy continuation of raw ``text`` (no template added); returns new text only."""
    import torch

    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def chat(model, tokenizer, question: str, answer_prefix: str = "", max_new_tokens: int = 48) -> str:
    """Greedy chat answer to ``question``; ``answer_prefix`` is included in the result."""
    prompt = chat_prompt(tokenizer, question, answer_prefix)
    return answer_prefix + generate(model, tokenizer, prompt, max_new_tokens)


def parse_json_answer(text: str, strict: bool = False):
    """The JSON value an answer starts with (bare or after a ```json fence), or None.

    ``strict=True`` requires the whole answer to be that one value (plus an
    optional closing fence); otherwise trailing text after a complete JSON
    value is ignored (small models often repeat themselves after it).
    """
    body = re.sub(r"^\s*```(?:json)?\s*", "", text)
    try:
        value, end = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    rest = body[end:].strip()
    if strict and rest not in ("", "```"):
        return None
    return value


def load_pair(base_dir: Path, adapter_dir: Path):
    """``(peft_model, tokenizer)``: the base model with one adapter, in eval mode."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    return model, tokenizer


def compare(model, tokenizer, questions=QUESTIONS, max_new_tokens: int = 48) -> list[dict]:
    """Greedy answers of the tuned model and of the base (adapter disabled)."""
    rows = []
    for q in questions:
        tuned = chat(model, tokenizer, q, max_new_tokens=max_new_tokens)
        with model.disable_adapter():
            base = chat(model, tokenizer, q, max_new_tokens=max_new_tokens)
        rows.append({"question": q, "base": base, "tuned": tuned})
    return rows


def forced_json(model, tokenizer, questions=QUESTIONS, prefixes=("```json\n", "{", '{"'),
                max_new_tokens: int = 64) -> list[dict]:
    """Force the answer to start with each prefix; is what follows valid JSON?"""
    rows = []
    for q in questions:
        for prefix in prefixes:
            answer = chat(model, tokenizer, q, answer_prefix=prefix, max_new_tokens=max_new_tokens)
            rows.append({"question": q, "prefix": prefix, "answer": answer,
                         "valid_json": parse_json_answer(answer) is not None,
                         "valid_json_strict": parse_json_answer(answer, strict=True) is not None})
    return rows
