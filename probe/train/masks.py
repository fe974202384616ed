"""Which tokens of a training example a trainer puts in the loss, as TRL's SFTTrainer does.

A record becomes one token sequence and a loss mask:

* ``messages`` (chat data, also ShareGPT ``conversations``, ``instruction``/``output`` and
  ``question``/``answer``, which become one user and one assistant turn): the conversation
  rendered by the tokenizer's chat template and tokenized as TRL does (no extra special
  tokens). Masks: ``"all"`` (TRL's default, ``assistant_only_loss=False``), ``"assistant"``
  (``assistant_only_loss=True``: every assistant turn), ``"last_assistant"``.
* ``prompt``/``completion`` (or ``response``), strings: prompt + completion + EOS, tokenized
  with the tokenizer's special tokens; the mask ``"completion"`` (TRL's default,
  ``completion_only_loss``) is every token after the prompt's own tokens, EOS included.
  Message lists: both rendered by the template, the completion is what follows the prompt
  rendered with its generation prompt.
* ``text``: the text + EOS, every token.

The assistant mask comes from the template's ``{% generation %}`` markers when it has them
(``return_assistant_tokens_mask``, what TRL requires); without them each assistant message's
content is located in the rendered text by character offsets (in order) and mapped to tokens
by their offsets, with the special token that closes the turn right after it (``<|im_end|>``),
which is what a ``{% generation %}`` span of a ChatML template holds.

The first token of a sequence is never scored (nothing predicts it); labels are not shifted
here: the logits at t predict token t + 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..data.records import ANSWER_ROLES, BadRecord, message_text
from ..engine.prompts import _tokenize

MASKS = ("all", "assistant", "last_assistant", "completion")
DEFAULT_MASK = {"messages": "all", "prompt_completion": "completion", "text": "all"}
KINDS = ("special", "template", "whitespace", "digits", "text")
_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
_ROLES = {"human": "user", "gpt": "assistant", "model": "assistant", "bot": "assistant",
          "chatbot": "assistant"}


@dataclass(frozen=True)
class Record:
    """One record in the shape a trainer reads it."""

    shape: str  # "messages" | "prompt_completion" | "text"
    messages: tuple[dict, ...] = ()
    prompt: object = None  # str or tuple of messages
    completion: object = None
    text: str | None = None


@dataclass(frozen=True)
class Tokens:
    """An example as the trainer feeds it: ids, which ones are in the loss, and their texts."""

    ids: list[int]
    mask: list[bool]  # mask[t]: token t is a loss target (mask[0] is always False)
    rendered: str  # the exact text tokenized
    spans: list[tuple[int, int]]  # per token: characters of ``rendered`` (an appended EOS: empty at the end)
    kinds: list[str]  # per token: one of KINDS
    mode: str  # the mask used

    @property
    def n_scored(self) -> int:
        return sum(self.mask)


def _messages(value, key: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise BadRecord(f"{key!r} is not a list of messages")
    out = []
    for m in value:
        role = m.get("role", m.get("from"))
        if not isinstance(role, str):
            raise BadRecord("a message has no 'role'")
        role = _ROLES.get(role.lower(), role)
        out.append({"role": role, "content": message_text(m.get("content", m.get("value")))})
    return tuple(out)


def parse(record) -> Record:
    """The trainer's view of one record (raises ``BadRecord`` naming what is wrong)."""
    if isinstance(record, str):
        return Record("text", text=record)
    if not isinstance(record, dict):
        raise BadRecord(f"a {type(record).__name__} is not a record")
    for key in ("messages", "conversations"):
        if key in record:
            return Record("messages", messages=_messages(record[key], key))
    a_key = next((k for k in ("completion", "response") if k in record), None)
    if "prompt" in record and a_key:
        p, c = record["prompt"], record[a_key]
        if isinstance(p, str) and isinstance(c, str):
            return Record("prompt_completion", prompt=p, completion=c)
        if isinstance(p, list) and isinstance(c, list):
            return Record("prompt_completion", prompt=_messages(p, "prompt"), completion=_messages(c, a_key))
        raise BadRecord(f"'prompt' and {a_key!r} must both be strings or both message lists")
    pairs = (("instruction", "output"), ("question", "answer"))
    for q, a in pairs:
        if q in record and a in record:
            if not isinstance(record[q], str) or not isinstance(record[a], str):
                raise BadRecord(f"{q!r} and {a!r} must be strings")
            user = record[q] + ("\n" + record["input"] if q == "instruction" and record.get("input") else "")
            return Record("messages", messages=({"role": "user", "content": user},
                                                {"role": "assistant", "content": record[a]}))
    if isinstance(record.get("text"), str):
        return Record("text", text=record["text"])
    raise BadRecord(f"unknown record shape (keys: {', '.join(sorted(map(str, record)))[:120]})")


def _template(tok) -> str:
    t = getattr(tok, "chat_template", None)
    if isinstance(t, dict):
        t = t.get("default") or next(iter(t.values()), None)
    return t or ""


def _render(tok, messages, generation_prompt: bool = False) -> str:
    if not _template(tok):
        raise BadRecord("chat data needs a chat template and this tokenizer has none")
    return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def _content_spans(rendered: str, messages) -> list[tuple[int, int, str]]:
    """(start, end, role) of each message's content in the rendered text, located in order."""
    out, cursor = [], 0
    for i, m in enumerate(messages):
        c = m["content"]
        if not c:
            continue
        at = rendered.find(c, cursor)
        if at < 0:
            raise BadRecord(f"message {i} ({m['role']}) is not found verbatim in the rendered conversation "
                       "(the chat template changes it); give a template with {% generation %} markers")
        out.append((at, at + len(c), m["role"]))
        cursor = at + len(c)
    return out


def _tokens(lm, text: str, add_special: bool) -> tuple[list[int], list[tuple[int, int]]]:
    ids, offsets = _tokenize(lm, text, add_special)
    # a post-processor's tail tokens (offset (0, 0) after the text) are dropped; EOS is added by us
    while len(ids) > 1 and offsets[-1] == (0, 0) and any(e for _, e in offsets[:-1]):
        ids, offsets = ids[:-1], offsets[:-1]
    return ids, offsets


def _overlaps(span, lo: int, hi: int) -> bool:
    a, b = span
    return a < hi and b > lo


def _kinds(lm, ids, spans, rendered: str, content: list[tuple[int, int]] | None) -> list[str]:
    special = set(lm.tokenizer.all_special_ids)
    added = set(getattr(lm.tokenizer, "added_tokens_decoder", {}) or {})
    out = []
    for t, (a, b) in zip(ids, spans):
        text = rendered[a:b]
        if t in special or t in added:
            out.append("special")
        elif content is not None and not any(_overlaps((a, b), lo, hi) for lo, hi in content):
            out.append("template")
        elif not text.strip():
            out.append("whitespace")
        elif text.strip().isdigit():
            out.append("digits")
        else:
            out.append("text")
    return out


def _with_eos(lm, ids, offsets, end: int):
    eos = lm.tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        return ids + [int(eos)], offsets + [(end, end)]
    return ids, offsets


def _assistant_by_markers(lm, messages, ids) -> list[bool]:
    out = lm.tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    got = list(out["input_ids"])
    if got != ids:
        raise BadRecord("the chat template's tokens differ from the rendered text's tokens")
    return [bool(x) for x in out["assistant_masks"]]


def _assistant_by_offsets(lm, ids, offsets, spans) -> list[bool]:
    special = set(lm.tokenizer.all_special_ids) | set(getattr(lm.tokenizer, "added_tokens_decoder", {}) or {})
    mask = [False] * len(ids)
    for lo, hi in spans:
        last = None
        for t, off in enumerate(offsets):
            if _overlaps(off, lo, hi):
                mask[t] = True
                last = t
        if last is not None and last + 1 < len(ids) and ids[last + 1] in special:
            mask[last + 1] = True  # the token that closes the turn
    return mask


def tokenize(lm, record: Record, mode: str | None = None) -> Tokens:
    """ids, loss mask and token kinds of one record (raises ``BadRecord`` with the reason)."""
    mode = mode or DEFAULT_MASK[record.shape]
    if mode not in MASKS:
        raise ValueError(f"mask must be one of {MASKS} or None (the trainer's default), got {mode!r}")
    allowed = {"messages": ("all", "assistant", "last_assistant"),
               "prompt_completion": ("all", "completion"), "text": ("all",)}[record.shape]
    if mode not in allowed:
        raise BadRecord(f"mask {mode!r} does not apply to {record.shape} data (use one of {allowed})")
    tok = lm.tokenizer
    if record.shape == "text":
        ids, offsets = _with_eos(lm, *_tokens(lm, record.text, True), len(record.text))
        rendered, mask, content = record.text, [True] * len(ids), None
    elif record.shape == "prompt_completion" and isinstance(record.prompt, str):
        rendered = record.prompt + record.completion
        ids, offsets = _with_eos(lm, *_tokens(lm, rendered, True), len(rendered))
        n_prompt = len(_tokens(lm, record.prompt, True)[0])
        mask = [mode == "all" or t >= n_prompt for t in range(len(ids))]
        content = [(0, len(rendered))]
    elif record.shape == "prompt_completion":
        head = _render(tok, record.prompt, generation_prompt=True)
        msgs = tuple(record.prompt) + tuple(record.completion)
        rendered = _render(tok, msgs)
        if not rendered.startswith(head):
            raise BadRecord("the conversation rendered does not start with the prompt rendered with its "
                       "generation prompt: the completion cannot be located")
        ids, offsets = _tokens(lm, rendered, False)
        mask = [mode == "all" or b > len(head) for a, b in offsets]
        try:
            content = [(a, b) for a, b, _ in _content_spans(rendered, msgs)]
        except BadRecord:
            content = None
    else:
        msgs = record.messages
        if mode != "all" and not any(m["role"].lower() in ANSWER_ROLES | {"assistant"} for m in msgs):
            raise BadRecord("no assistant turn to score (mask=%r)" % mode)
        rendered = _render(tok, msgs)
        ids, offsets = _tokens(lm, rendered, False)
        try:
            located = _content_spans(rendered, msgs)
        except BadRecord:
            if mode != "all" and not _GENERATION.search(_template(tok)):
                raise
            located = None  # a template that rewrites the content: no template/text split of kinds
        content = None if located is None else [(a, b) for a, b, _ in located]
        if mode == "all":
            mask = [True] * len(ids)
        else:
            if _GENERATION.search(_template(tok)):
                mask = _assistant_by_markers(lm, msgs, ids)
                if mode == "last_assistant":  # keep the last run of True
                    end = max(i for i, m in enumerate(mask) if m) if any(mask) else -1
                    start = end
                    while start > 0 and mask[start - 1]:
                        start -= 1
                    mask = [start <= i <= end for i in range(len(mask))]
            else:
                spans = [(a, b) for a, b, role in located if role == "assistant"]
                mask = _assistant_by_offsets(lm, ids, offsets, spans[-1:] if mode == "last_assistant" else spans)
    if not ids:
        raise BadRecord("the record tokenizes to nothing")
    mask = [False] + [bool(m) for m in mask[1:]]
    if not any(mask):
        raise BadRecord(f"no token to score under mask {mode!r}")
    spans = [tuple(o) for o in offsets]
    return Tokens(ids, mask, rendered, spans, _kinds(lm, ids, spans, rendered, content), mode)
