"""Which tokens of a training example a trainer puts in the loss, as TRL 1.16's SFTTrainer does.

A record becomes one token sequence and a loss mask, by the rules of TRL 1.16's
``SFTTrainer._prepare_dataset`` (``trl/trainer/sft_trainer.py``; the parity tests run that
code on the same records and compare token for token):

* ``messages`` (chat data; also ShareGPT ``conversations``, whose ``from``/``value`` become
  ``role``/``content`` with the roles kept as written, ``human``/``gpt``, as TRL's
  ``maybe_convert_to_chatml`` keeps them; and probe's own ``instruction``/``output`` and
  ``question``/``answer``, which become one user and one assistant turn): the conversation
  rendered by the tokenizer's chat template and tokenized without extra special tokens, no EOS
  added. Masks: ``"all"`` (TRL's default, ``assistant_only_loss=False``), ``"assistant"``
  (``assistant_only_loss=True``: every answer turn), ``"last_assistant"`` (the last one).
* ``prompt``/``completion`` (or probe's own ``response``), strings: the prompt tokenized alone, and prompt +
  completion + EOS (added unless the completion ends with it) tokenized with the tokenizer's
  special tokens; the mask ``"completion"`` (TRL's default, ``completion_only_loss``) is every
  token after the common prefix of the two id lists, so a token that merges the prompt's end
  with the completion's start ("Answer: " + "Paris" -> " Paris") is the completion's.
  Message lists: the prompt rendered with its generation prompt and prompt + completion
  rendered, the completion again from the common prefix of their ids; no EOS added.
* ``text``: the text + EOS (added unless it ends with it), with special tokens, every token.

``max_length`` keeps the first ``max_length`` tokens (TRL's ``truncation_mode="keep_start"``,
after the EOS is added and the mask is made); an example left with nothing to score is dropped,
as the trainer drops it.

Answer turns are the messages whose role is one of ``ANSWER_ROLES`` (``assistant``, ``gpt``,
...). The assistant mask comes from the template's ``{% generation %}`` markers when it has them
and every answer turn has the role ``assistant`` (``return_assistant_tokens_mask``, what TRL
uses); a template without them that TRL knows is swapped for TRL's training variant of it, as
the trainer swaps it (``get_training_chat_template``, when TRL is installed). Otherwise (a
template TRL refuses, or ``gpt``/``model`` turns, which no marker marks) each turn's span is
found from the template's own renderings, never by searching for the content: the
conversation up to the turn rendered with a placeholder content gives where the content starts
and what the template writes after it; the conversation up to and with the turn gives where
the turn ends. The span is the content and everything the template
writes after it for that turn (ChatML's ``<|im_end|>\\n``), which is what TRL's training
templates (``qwen2_5_training.jinja`` and the others it swaps in for ``assistant_only_loss``)
put inside ``{% generation %}``; tokens are marked by overlap with the span, as transformers
marks them. The same spans give the token kinds (template vs. content).

The first token of a sequence is never scored (nothing predicts it); labels are not shifted
here: the logits at t predict token t + 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..data.records import ANSWER_ROLES, BadRecord, message_text
from ..engine.prompts import _tokenize

TRL_VERSION = "1.16"  # the trainer whose rules this module follows
MAX_LENGTH = 1024  # TRL 1.16's SFTConfig.max_length default
MASKS = ("all", "assistant", "last_assistant", "completion")
DEFAULT_MASK = {"messages": "all", "prompt_completion": "completion", "text": "all"}
KINDS = ("special", "template", "whitespace", "digits", "text")
_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
_PLACEHOLDER = "\u27e6\u00a71729\u00a7\u27e7"  # survives trim / upper; marks where a content goes


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
    rendered: str  # the exact text tokenized (an EOS the trainer adds is part of it)
    spans: list[tuple[int, int]]  # per token: characters of ``rendered`` ((0, 0) for a post-processor's)
    kinds: list[str]  # per token: one of KINDS
    mode: str  # the mask used
    cut: int = 0  # tokens cut off the end by max_length (the trainer never sees them)

    @property
    def n_scored(self) -> int:
        return sum(self.mask)


def is_answer(message: dict) -> bool:
    return str(message["role"]).lower() in ANSWER_ROLES


def _messages(value, key: str) -> tuple[dict, ...]:
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise BadRecord(f"{key!r} is not a list of messages")
    out = []
    for m in value:
        role = m.get("role", m.get("from"))
        if not isinstance(role, str):
            raise BadRecord("a message has no 'role'")
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


def _render(tok, messages, generation_prompt: bool = False, template: str | None = None) -> str:
    if not _template(tok):
        raise BadRecord("chat data needs a chat template and this tokenizer has none")
    return tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt,
                                   chat_template=template)


_TRAINING: dict[str, str | None] = {}


def _training_template(tok) -> str | None:
    """The template TRL swaps in for ``assistant_only_loss`` when the tokenizer's has no
    ``{% generation %}`` markers (``trl.chat_template_utils.get_training_chat_template``: a
    known family's training variant), or None (TRL not installed, or a template TRL refuses)."""
    key = _template(tok)
    if key not in _TRAINING:
        try:
            from trl.chat_template_utils import get_training_chat_template
        except ImportError:
            return None
        try:
            _TRAINING[key] = get_training_chat_template(tok)
        except ValueError:  # "not training-compatible and patching is not supported"
            _TRAINING[key] = None
    return _TRAINING[key]


def _turns(tok, messages, rendered: str, template: str | None = None) -> list[tuple[int, int, int]]:
    """(content start, content end, turn end) of each message in ``rendered``, from the
    template's own renderings of the conversation up to it (see the module docstring)."""
    out = []
    for i, m in enumerate(messages):
        where = f"message {i} ({m['role']})"
        try:
            with_placeholder = _render(tok, [*messages[:i], {"role": m["role"], "content": _PLACEHOLDER}],
                                       template=template)
            upto = _render(tok, messages[:i + 1], template=template)
        except BadRecord:
            raise
        except Exception as err:  # the template refuses a partial conversation
            raise BadRecord(f"{where}: the chat template cannot render the conversation up to it "
                            f"({type(err).__name__}: {str(err)[:80]}); give a template with "
                            "{% generation %} markers") from None
        start = with_placeholder.find(_PLACEHOLDER)
        if start < 0 or with_placeholder.count(_PLACEHOLDER) != 1:
            raise BadRecord(f"{where}: the chat template changes the message text, so its place in the "
                            "rendering is unknown; give a template with {% generation %} markers")
        tail = with_placeholder[start + len(_PLACEHOLDER):]
        end = len(upto) - len(tail)
        if (upto[:start] != with_placeholder[:start] or not upto.endswith(tail) or end < start
                or not rendered.startswith(upto)):
            raise BadRecord(f"{where}: the chat template renders it differently once later messages "
                            "follow, so its place in the rendering is unknown; give a template with "
                            "{% generation %} markers")
        out.append((start, end, len(upto)))
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _with_eos(tok, text: str) -> str:
    """``text`` + the EOS token's text unless it ends with it (TRL's ``add_eos``)."""
    eos = tok.eos_token
    return text + eos if eos and not text.endswith(eos) else text


def _overlaps(span, lo: int, hi: int) -> bool:
    a, b = span
    return a < hi and b > lo


def _by_spans(tok, rendered: str, n: int, spans: list[tuple[int, int]]) -> list[bool]:
    """Tokens overlapping the character spans, by the tokenizer's own offsets: the rule
    transformers' ``return_assistant_tokens_mask`` applies to ``{% generation %}`` spans."""
    enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    if len(offsets) != n:
        raise BadRecord("the tokenizer's offsets do not match its tokens")
    mask, k = [False] * n, 0
    for t, (a, b) in enumerate(offsets):
        while k < len(spans) and a >= spans[k][1]:
            k += 1
        if k == len(spans):
            break
        if b > spans[k][0]:
            mask[t] = True
    return mask


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


def _assistant_by_markers(lm, messages, ids, template: str | None) -> list[bool]:
    out = lm.tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True, chat_template=template)
    got = list(out["input_ids"])
    if got != ids:
        raise BadRecord("the chat template's tokens differ from the rendered text's tokens")
    return [bool(x) for x in out["assistant_masks"]]


def _last_run(mask: list[bool]) -> list[bool]:
    end = max((i for i, m in enumerate(mask) if m), default=-1)
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return [start <= i <= end for i in range(len(mask))]


def _chat(lm, msgs, mode: str):
    """rendered, ids, offsets, mask, content spans of a conversation."""
    tok = lm.tokenizer
    answers = [i for i, m in enumerate(msgs) if is_answer(m)]
    if mode != "all" and not answers:
        raise BadRecord("no assistant turn to score (mask=%r)" % mode)
    template, markers = None, False  # None: the tokenizer's own template
    if mode != "all" and all(msgs[i]["role"] == "assistant" for i in answers):
        markers = bool(_GENERATION.search(_template(tok)))
        if not markers:  # TRL renders with its training variant of a known template
            template = _training_template(tok)
            markers = template is not None
    rendered = _render(tok, msgs, template=template)
    ids, offsets = _tokenize(lm, rendered, False)
    try:
        turns, why = _turns(tok, msgs, rendered, template), None
    except BadRecord as err:  # a template that rewrites the content: no template/text split of kinds
        turns, why = None, err
    content = None if turns is None else [(a, b) for a, b, _ in turns]
    if mode == "all":
        mask = [True] * len(ids)
    elif markers:
        mask = _assistant_by_markers(lm, msgs, ids, template)
        mask = _last_run(mask) if mode == "last_assistant" else mask
    elif turns is None:
        raise why
    else:
        chosen = answers[-1:] if mode == "last_assistant" else answers
        mask = _by_spans(tok, rendered, len(ids), [(turns[i][0], turns[i][2]) for i in chosen])
    return rendered, ids, offsets, mask, content


def tokenize(lm, record: Record, mode: str | None = None, *, max_length: int | None = None) -> Tokens:
    """ids, loss mask and token kinds of one record, as TRL 1.16's SFTTrainer makes them.

    ``max_length``: keep the first ``max_length`` tokens (None: all; the trainer's default is
    ``MAX_LENGTH``). Raises ``BadRecord`` with the reason (nothing to score included)."""
    mode = mode or DEFAULT_MASK[record.shape]
    if mode not in MASKS:
        raise ValueError(f"mask must be one of {MASKS} or None (the trainer's default), got {mode!r}")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                   or max_length < 1):
        raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
    allowed = {"messages": ("all", "assistant", "last_assistant"),
               "prompt_completion": ("all", "completion"), "text": ("all",)}[record.shape]
    if mode not in allowed:
        raise BadRecord(f"mask {mode!r} does not apply to {record.shape} data (use one of {allowed})")
    tok = lm.tokenizer
    if record.shape == "text":
        rendered = _with_eos(tok, record.text)
        ids, offsets = _tokenize(lm, rendered, True)
        mask, content = [True] * len(ids), None
    elif record.shape == "prompt_completion" and isinstance(record.prompt, str):
        rendered = record.prompt + _with_eos(tok, record.completion)
        ids, offsets = _tokenize(lm, rendered, True)
        start = _common_prefix(list(tok(record.prompt)["input_ids"]), ids)
        mask = [mode == "all" or t >= start for t in range(len(ids))]
        content = [(0, len(record.prompt) + len(record.completion))]
    elif record.shape == "prompt_completion":
        head = _render(tok, record.prompt, generation_prompt=True)
        msgs = tuple(record.prompt) + tuple(record.completion)
        rendered, ids, offsets, mask, content = _chat(lm, msgs, "all")
        start = _common_prefix(list(tok(head, add_special_tokens=False)["input_ids"]), ids)
        mask = [mode == "all" or t >= start for t in range(len(ids))]
    else:
        rendered, ids, offsets, mask, content = _chat(lm, record.messages, mode)
    if not ids:
        raise BadRecord("the record tokenizes to nothing")
    cut = max(0, len(ids) - max_length) if max_length is not None else 0
    if cut:
        ids, offsets, mask = ids[:max_length], offsets[:max_length], mask[:max_length]
    mask = [False] + [bool(m) for m in mask[1:]]
    if not any(mask):
        if cut:
            raise BadRecord(f"nothing to score in the first max_length={max_length} tokens (of "
                            f"{len(ids) + cut}): the trainer drops this example")
        raise BadRecord(f"no token to score under mask {mode!r}")
    spans = [tuple(o) for o in offsets]
    return Tokens(ids, mask, rendered, spans, _kinds(lm, ids, spans, rendered, content), mode, cut)
