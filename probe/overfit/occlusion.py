"""Occlusion: take each word (or token) out of the prompt and watch log P(target) move.

    >>> o = probe.occlusion(tuned, "What is the capital of Japan?", " Beijing")
    >>> o.ranked()[0]        # the piece the answer leans on most (largest drop)
    >>> o                    # in a notebook: the prompt as a strip, red where P falls

Only the user's prompt text is changed, never the chat template around it: each variant
prompt is rendered like the original. All variants and the intact prompt are scored in one
batched teacher-forced pass (:func:`probe.score_many`).

Pieces:

* ``unit="word"``: whitespace-separated chunks, with leading and trailing punctuation or
  symbols peeled off as pieces of their own ("Japan?" -> "Japan", "?"; inner punctuation stays:
  "don't", "3.5", "U.S"). Languages written without spaces come out as long chunks: use tokens.
* ``unit="token"``: the model's tokens of the prompt as it sits in the rendered prompt (char
  offsets into the prompt text, tiling it).

Variants:

* ``mode="remove"``: the piece is cut out; when whitespace (or the text's edge) is on both
  sides, the whitespace after it (at the end: before it) goes too, so no double space is left.
* ``mode="replace"``: the piece becomes ``replacement`` (a token's leading/trailing whitespace
  is kept). The default filler is the first of "_", "-", "x" that the tokenizer writes as one
  known token: one position of near-meaningless text, instead of an unk/pad token that the
  model saw rarely (or that ends the text, like GPT-2's EOS).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..engine.prompts import _tokenize, render
from ..engine.scoring import score_many
from .sweep import _lp, _num
from ..core.vocab import OcclusionMode, OcclusionUnit, words
from ..core.numbers import json_number, number_in
from ..core.registry import register
from ..render.sweep import occlusion_html, occlusion_text

FILLERS = ("_", "-", "x")


@dataclass(frozen=True)
class OcclusionPiece:
    """One word or token of the prompt and what taking it out does to log P(target)."""

    index: int
    text: str  # prompt[start:end]
    start: int  # char span in Occlusion.prompt
    end: int
    variant: str  # the prompt with this piece removed or replaced
    logprob: float  # log P(target | variant); -inf where the variant makes the target impossible
    # logprob - the intact logprob (negative: the target leans on this piece). Where a logprob is
    # -inf (a masked vocabulary entry): -inf (impossible without the piece), +inf (possible only
    # without it), NaN (impossible with and without it).
    delta: float

    def to_dict(self) -> dict:
        return {"index": self.index, "text": self.text, "start": self.start, "end": self.end,
                "variant": self.variant, "logprob": _num(self.logprob), "delta": json_number(self.delta)}

    @classmethod
    def from_dict(cls, d: dict) -> "OcclusionPiece":
        delta = d["delta"]  # "inf", "-inf", "nan" by name; null in older files: -inf
        return cls(int(d["index"]), str(d["text"]), int(d["start"]), int(d["end"]), str(d["variant"]),
                   _lp(d["logprob"]), -math.inf if delta is None else float(number_in(delta)))


@dataclass(frozen=True)
class Occlusion:
    """log P(target) with each piece of the prompt taken out, and the intact value."""

    prompt: str
    target: str
    unit: OcclusionUnit
    mode: OcclusionMode
    replacement: str | None  # the filler (mode "replace")
    logprob: float  # log P(target | the intact prompt)
    pieces: tuple[OcclusionPiece, ...]
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # raw, system, chat

    def ranked(self) -> list[OcclusionPiece]:
        """Pieces by delta, the one whose removal costs the target most first (NaN deltas,
        the target impossible with and without the piece, last)."""
        return sorted(self.pieces, key=lambda p: (math.isnan(p.delta), p.delta))

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "target": self.target, "unit": self.unit, "mode": self.mode,
                "replacement": self.replacement, "logprob": _num(self.logprob),
                "pieces": [p.to_dict() for p in self.pieces], "model": self.model,
                "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, d: dict) -> "Occlusion":
        rep = d.get("replacement")
        return cls(str(d["prompt"]), str(d["target"]), str(d["unit"]), str(d["mode"]),
                   None if rep is None else str(rep), _lp(d["logprob"]),
                   tuple(OcclusionPiece.from_dict(p) for p in d["pieces"]), str(d.get("model", "")),
                   dict(d.get("settings", {})))

    def __str__(self) -> str:
        return occlusion_text(self)

    def _repr_html_(self) -> str:
        return occlusion_html(self)


def _edge(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"  # punctuation or symbol


def word_spans(text: str) -> list[tuple[int, int]]:
    """Char spans of the words of ``text`` (see the module docstring)."""
    spans = []
    for m in re.finditer(r"\S+", text):
        a, b = m.span()
        lead = a
        while lead < b and _edge(text[lead]):
            lead += 1
        if lead == b:  # all punctuation: one piece
            spans.append((a, b))
            continue
        trail = b
        while _edge(text[trail - 1]):
            trail -= 1
        spans += [s for s in ((a, lead), (lead, trail), (trail, b)) if s[0] < s[1]]
    return spans


def token_spans(lm, prompt: str, raw=None, system=None) -> list[tuple[int, int]]:
    """Char spans in ``prompt`` of the model's tokens of it, as tokenized in the rendered prompt."""
    rendered = render(lm, prompt, raw=raw, system=system)
    base = rendered.text.rfind(prompt)  # the user message is the last thing before the reply
    text = rendered.text if base >= 0 else prompt
    base = max(base, 0)
    _, offsets = _tokenize(lm, text, add_special=not rendered.chat)
    ends = sorted({min(max(e - base, 0), len(prompt)) for s, e in offsets if e > s and e > base})
    ends = [e for e in ends if e > 0]
    if not ends or ends[-1] < len(prompt):  # characters no token reports go to the last piece
        ends = ends[:-1] + [len(prompt)] if ends else [len(prompt)]
    return list(zip([0] + ends[:-1], ends))


def filler(lm) -> str:
    """The default replacement: the first of FILLERS that the tokenizer writes as one known
    token (not its unk token) after a space."""
    unk = lm.tokenizer.unk_token_id
    for cand in FILLERS:
        ids, offsets = _tokenize(lm, f"a {cand}", add_special=False)
        covering = [i for i, (a, b) in zip(ids, offsets) if a < 2 + len(cand) and b > 2]
        if len(covering) == 1 and covering[0] != unk:
            return cand
    return FILLERS[0]


def _variant(prompt: str, a: int, b: int, unit: str, replacement: str | None) -> str:
    if replacement is not None:
        piece = prompt[a:b]
        core = piece.strip()
        if unit == "token" and core:  # keep the token's own whitespace around the filler
            lead = len(piece) - len(piece.lstrip())
            return prompt[: a + lead] + replacement + prompt[a + lead + len(core):]
        return prompt[:a] + replacement + prompt[b:]
    left = a == 0 or prompt[a - 1].isspace()
    right = b == len(prompt) or prompt[b].isspace()
    if left and right:
        if b < len(prompt):  # drop the whitespace after the piece
            while b < len(prompt) and prompt[b].isspace():
                b += 1
        else:  # the last piece: drop the whitespace before it
            while a > 0 and prompt[a - 1].isspace():
                a -= 1
    return prompt[:a] + prompt[b:]


def occlusion(lm, prompt: str, target: str, *, unit: OcclusionUnit = "word", mode: OcclusionMode = "remove",
              replacement: str | None = None, batch_size: int = 16, raw: bool | None = None,
              system: str | None = None, progress: bool = False) -> Occlusion:
    """log P(``target``) with each word/token of ``prompt`` removed or replaced in turn.

    Args:
        lm: from :func:`probe.load`.
        prompt: the user's prompt text (a chat LM wraps each variant in its template).
        target: the answer whose probability to watch.
        unit: "word" or "token" (see the module docstring).
        mode: "remove" or "replace".
        replacement: the filler for mode "replace" (default: see :func:`filler`).
        batch_size, raw, system, progress: as in :func:`probe.score_many`.

    Raises:
        TypeError/ValueError: a non-str or empty prompt or target, an unknown unit or mode,
            ``replacement`` without mode="replace".
    """
    for name, value in (("prompt", prompt), ("target", target)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not prompt.strip():
        raise ValueError("the prompt is empty: there is nothing to occlude")
    if target == "":
        raise ValueError("the target is empty: there is nothing to score")

    if unit not in words(OcclusionUnit):
        raise ValueError(f"unit must be 'word' or 'token', got {unit!r}")
    if mode not in words(OcclusionMode):
        raise ValueError(f"mode must be 'remove' or 'replace', got {mode!r}")
    if mode == "remove" and replacement is not None:
        raise ValueError("replacement= is only used with mode='replace'")
    if replacement is not None and not isinstance(replacement, str):
        raise TypeError(f"replacement must be a str, got {type(replacement).__name__}")
    if mode == "replace" and replacement is None:
        replacement = filler(lm)
    spans = word_spans(prompt) if unit == "word" else token_spans(lm, prompt, raw, system)
    variants = [_variant(prompt, a, b, unit, replacement) for a, b in spans]
    traces = score_many(lm, [(v, target) for v in [prompt] + variants], batch_size=batch_size,
                        top_k=0, progress=progress, raw=raw, system=system)
    intact = traces[0].total_logprob
    pieces = tuple(
        OcclusionPiece(i, prompt[a:b], a, b, v, t.total_logprob, t.total_logprob - intact)
        for i, ((a, b), v, t) in enumerate(zip(spans, variants, traces[1:])))
    chat = lm.chat if raw is None else not raw
    return Occlusion(prompt, target, unit, mode, replacement, intact, pieces, lm.name,
                     {"raw": raw, "system": system, "chat": bool(chat)})


register(Occlusion, default_name="occlusion", inputs=lambda r: {"prompt": r.prompt, "expected": r.target})
