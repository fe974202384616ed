"""What the model really sees: the exact token ids and texts of a prompt (and answer).

    >>> seen = lm.inputs("What is the capital of France?", answer=" Paris")
    >>> print(seen)                 # one line per token: position, id, text, special / answer
    >>> seen.notes                  # e.g. a BOS written twice, a chat model fed raw text

The ids are made exactly as :func:`probe.score` and :func:`probe.generate` make them (same
rendering, same special tokens, answer tokenized together with the prompt), so what this shows
is what was scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..engine.prompts import Prompt, encode, encode_prompt, render
from ..render.inputs import inputs_html


@dataclass(frozen=True)
class ModelInput:
    """A prompt (and optional answer) as token ids, with each token's own text."""

    prompt: Any  # as given (text or messages)
    answer: str | None
    text: str  # the rendered prompt: chat template applied or raw text
    chat: bool  # rendered by the chat template
    ids: tuple[int, ...]  # prompt (+ answer) ids, as the model gets them
    tokens: tuple[str, ...]  # each id decoded on its own (special tokens by name)
    special: tuple[bool, ...]  # the id is one of the tokenizer's special tokens
    n_prompt: int  # ids[n_prompt:] are the answer's tokens
    notes: tuple[str, ...] = ()  # things worth a second look, in words

    def __len__(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelInput":
        return cls(prompt=d["prompt"], answer=d.get("answer"), text=str(d["text"]), chat=bool(d["chat"]),
                   ids=tuple(int(i) for i in d["ids"]), tokens=tuple(str(t) for t in d["tokens"]),
                   special=tuple(bool(s) for s in d["special"]), n_prompt=int(d["n_prompt"]),
                   notes=tuple(str(n) for n in d.get("notes", ())))

    def __str__(self) -> str:
        head = (f"{len(self.ids)} tokens ({self.n_prompt} prompt"
                + (f", {len(self.ids) - self.n_prompt} answer" if self.answer is not None else "")
                + f"), {'chat template' if self.chat else 'raw text'}")
        lines = [head]
        for i, (tid, text, special) in enumerate(zip(self.ids, self.tokens, self.special)):
            flags = ("special " if special else "") + ("answer" if i >= self.n_prompt else "")
            lines.append(f"{i:5d} {tid:8d}  {text!r}  {flags}".rstrip())
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return inputs_html(self)


def _notes(lm, ids: list[int], rendered, chat_available: bool) -> list[str]:
    tok = lm.tokenizer
    notes = []
    bos = tok.bos_token_id
    if bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos:
        notes.append(f"the sequence starts with {tok.bos_token!r} twice: the text (or the chat "
                     "template) writes one and the tokenizer adds another")
    if chat_available and not rendered.chat:
        notes.append("this tokenizer has a chat template, but the prompt is fed as raw text")
    if not rendered.chat and rendered.text[-1:].isspace():
        notes.append("the raw prompt ends with whitespace: a following word's leading space is "
                     "then part of the prompt, not of the word's token")
    typed = [t for t in tok.all_special_tokens if t and t in str(rendered.text)]
    if typed and not rendered.chat:
        notes.append(f"the text contains special-token strings {typed[:3]}: they become special tokens")
    return notes


def model_input(lm, prompt: Prompt, answer: str | None = None, *, raw: bool | None = None,
                system: str | None = None) -> ModelInput:
    """The exact ids ``lm`` is given for ``prompt`` (+ ``answer``); see the module docstring."""
    rendered = render(lm, prompt, raw=raw, system=system)
    if answer is None:
        ids, n_prompt = encode_prompt(lm, rendered), None
        n_prompt = len(ids)
    else:
        enc = encode(lm, rendered, answer)
        ids, n_prompt = list(enc.ids), enc.n_prompt
    special_ids = set(lm.tokenizer.all_special_ids)
    return ModelInput(
        prompt=prompt if isinstance(prompt, str) else [dict(m) for m in prompt],
        answer=answer, text=rendered.text, chat=rendered.chat, ids=tuple(ids),
        tokens=tuple(lm.token_text(i) for i in ids), special=tuple(i in special_ids for i in ids),
        n_prompt=n_prompt,
        notes=tuple(_notes(lm, ids, rendered, bool(getattr(lm.tokenizer, "chat_template", None)))),
    )
