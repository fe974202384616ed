"""Text -> token ids, keeping character offsets.

Two rules carry all the correctness here:

1. The prompt and the answer are tokenized *together* and split by character offsets, so an
   answer's tokens are the ones the model really sees in context (never the answer tokenized
   alone).
2. Positions are found from offsets, never from token values (a pad token can also be a
   chat token).

A chat LM renders the prompt through its chat template with the generation prompt added; a
raw LM uses the text as is. ``raw=True`` forces raw text on a chat model (the continuation
test), a list of ``{"role", "content"}`` messages gives a multi-turn prompt, ``system=`` adds
a system message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

Prompt = str | Sequence[dict]


@dataclass(frozen=True)
class Rendered:
    """A prompt as the exact text the model is conditioned on."""

    text: str
    chat: bool  # rendered by a chat template (which writes its own special tokens)


@dataclass(frozen=True)
class Encoded:
    """prompt + answer as one id sequence, with the answer's tokens located by offsets."""

    ids: list[int]  # the whole sequence
    n_prompt: int  # ids[n_prompt:] are the answer's tokens
    prompt: str  # rendered prompt text
    answer: str
    spans: list[tuple[int, int]]  # per answer token: char span in ``answer`` (tiling it)
    texts: list[str]  # per answer token: exact text (a straddling first token includes prompt chars)
    straddles: bool  # the first answer token begins inside the prompt

    @property
    def answer_ids(self) -> list[int]:
        return self.ids[self.n_prompt :]


def render(lm, prompt: Prompt, *, raw: bool | None = None, system: str | None = None) -> Rendered:
    """Render ``prompt`` the way ``lm`` expects it (see the module docstring)."""
    use_chat = lm.chat if raw is None else not raw
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, Sequence) and all(isinstance(m, dict) for m in prompt):
        messages = [dict(m) for m in prompt]
        for i, m in enumerate(messages):
            if "role" not in m or "content" not in m:
                raise ValueError(f"message {i} needs 'role' and 'content' keys, got {sorted(m)}")
        if not use_chat:
            raise ValueError("a list of messages needs a chat model (raw=True was asked for or "
                             "the model has no chat template)")
    else:
        raise TypeError(f"prompt must be a str or a list of message dicts, got {type(prompt).__name__}")
    if system is not None:
        if not isinstance(system, str):
            raise TypeError(f"system must be a str, got {type(system).__name__}")
        if not use_chat:
            raise ValueError("system= needs a chat prompt (the model renders raw text)")
        messages = [{"role": "system", "content": system}] + messages
    if not use_chat:
        return Rendered(text=prompt, chat=False)
    if not getattr(lm.tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template; pass raw=True or load(chat=False)")
    text = lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return Rendered(text=text, chat=True)


def _check_answer(answer) -> None:
    if not isinstance(answer, str):
        raise TypeError(f"the answer/target must be a str, got {type(answer).__name__}")
    if answer == "":
        raise ValueError("the answer/target is empty: there is nothing to score")


def _untrimmed_backend(lm):
    """A clone of the backend tokenizer with ``trim_offsets`` off, or None if not needed.

    Byte-level tokenizers that trim offsets report a whitespace-only token as zero-width and
    drop the leading space from " Paris": the characters would belong to no token. Untrimmed
    offsets give every character to the token that holds it; the ids are the same.
    """
    if "untrimmed" not in lm._aux:
        backend = getattr(lm.tokenizer, "backend_tokenizer", None)
        spec = backend.to_str() if backend is not None else ""
        clone = None
        if re.search(r'"trim_offsets":\s*true', spec):
            from tokenizers import Tokenizer

            clone = Tokenizer.from_str(re.sub(r'"trim_offsets":\s*true', '"trim_offsets": false', spec))
            clone.no_truncation()
            clone.no_padding()
        lm._aux["untrimmed"] = clone
    return lm._aux["untrimmed"]


def _tokenize(lm, text: str, add_special: bool) -> tuple[list[int], list[tuple[int, int]]]:
    """ids and character offsets of ``text``, as the model's tokenizer makes them."""
    enc = lm.tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    clone = _untrimmed_backend(lm)
    if clone is not None:
        other = clone.encode(text, add_special_tokens=add_special)
        if list(other.ids) == ids:  # same tokens: take the offsets that cover every character
            offsets = [tuple(o) for o in other.offsets]
    return ids, offsets


def encode(lm, rendered: Rendered, answer: str) -> Encoded:
    """Tokenize ``rendered.text + answer`` together and locate the answer's tokens.

    Raises:
        TypeError: a non-string answer.
        ValueError: an empty answer, an answer that yields no token, nothing to condition the
            first answer token on (empty raw prompt without a BOS token), or a sequence longer
            than the model's context (both lengths named).
    """
    _check_answer(answer)
    tok = lm.tokenizer
    full = rendered.text + answer
    cut = len(rendered.text)
    ids, offsets = _tokenize(lm, full, add_special=not rendered.chat)
    first = next((i for i, (_, end) in enumerate(offsets) if end > cut), None)
    if first is None:
        raise ValueError(f"the answer {answer!r} produced no token in context")
    # A post-processor may append special tokens (offset (0, 0)) after the text: not ours.
    last = next((i for i in range(first, len(ids)) if offsets[i] == (0, 0)), len(ids))
    ids, offsets = ids[:last], offsets[:last]
    covered = max((end for _, end in offsets[:first]), default=0)
    straddles = offsets[first][0] < cut or covered < cut
    spans, texts = [], []
    prev = covered
    for _, end in offsets[first:]:
        end = max(end, prev)  # tile the answer: gaps (trimmed spaces) go to the next token
        texts.append(full[prev:end])
        spans.append((max(prev - cut, 0), end - cut))
        prev = end
    if prev < len(full):  # characters no token reports (e.g. stripped by a normalizer)
        texts[-1] += full[prev:]
        spans[-1] = (spans[-1][0], len(answer))
    if straddles:
        texts[0] = full[min(offsets[first][0], covered) : cut + spans[0][1]]
    n_prompt = first
    if n_prompt == 0:
        bos = tok.bos_token_id
        if bos is None:
            raise ValueError(
                "the prompt is empty and the tokenizer has no BOS token: the first answer "
                "token has nothing to be conditioned on; give a prompt"
            )
        ids, n_prompt = [bos] + ids, 1
    limit = lm.max_length
    if limit is not None and len(ids) > limit:
        raise ValueError(
            f"prompt ({n_prompt} tokens) + answer ({len(ids) - n_prompt} tokens) = {len(ids)} "
            f"tokens is longer than the model's context of {limit} tokens"
        )
    return Encoded(ids, n_prompt, rendered.text, answer, spans, texts, straddles)


def encode_prompt(lm, rendered: Rendered) -> list[int]:
    """The prompt alone as ids (for generation), with a BOS when it would be empty."""
    tok = lm.tokenizer
    ids = list(tok(rendered.text, add_special_tokens=not rendered.chat)["input_ids"])
    if not ids:
        if tok.bos_token_id is None:
            raise ValueError(
                "the prompt is empty and the tokenizer has no BOS token: there is nothing to "
                "generate from; give a prompt"
            )
        ids = [tok.bos_token_id]
    return ids
