"""The logit lens: what each layer would predict if the model stopped there.

    >>> lens = probe.layers(tuned, "What is the capital of Japan?", " Beijing")
    >>> lens.first_top()          # the first layer where " Beijing" is already the top token
    >>> print(lens); lens.figure()

Layer 0 is the embedding output, layer ``i`` the output of block ``i``. Each layer's hidden
state at the answer positions goes through the model's own final norm and LM head (and its
logit scaling/softcapping); the last layer is therefore the model's real output, and that is
checked on every call (the lens raises rather than report numbers that are not the model's).
Prompt and target are encoded exactly as :func:`probe.score` does, so positions match: the
hidden state at position t predicts token t + 1.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch

from ..engine.anatomy import Anatomy, StructureError, anatomy
from ..engine.forward import forward, left_pad
from ..engine.prompts import Prompt, encode, render
from ..engine.trace import Alternative
from ..engine.scoring import check_top_k
from ..engine.stats import CHUNK_ELEMENTS, alternatives, row_stats
from ..core.registry import register
from ..render.lens import lens_figure, lens_html, lens_text


def _num(x: float) -> float | None:
    """JSON-safe float: non-finite values become None."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class LensCell:
    """One target token read at one layer."""

    rank: int  # 1 + how many tokens this layer scores strictly higher
    prob: float
    logprob: float  # -inf when the probability underflows to 0
    top: tuple[Alternative, ...]  # this layer's top-k next tokens, most likely first

    @property
    def preferred(self) -> Alternative | None:
        return self.top[0] if self.top else None

    def to_dict(self) -> dict:
        return {"rank": self.rank, "prob": self.prob, "logprob": _num(self.logprob),
                "top": [{"id": a.id, "text": a.text, "prob": a.prob, "logprob": _num(a.logprob)} for a in self.top]}

    @classmethod
    def from_dict(cls, d: dict) -> LensCell:
        lp = d.get("logprob")
        return cls(rank=int(d["rank"]), prob=float(d["prob"]),
                   logprob=-math.inf if lp is None else float(lp),
                   top=tuple(Alternative.from_dict(a) for a in d.get("top", ())))


@dataclass(frozen=True)
class LayerLens:
    """Per layer and per target token: the target's rank and probability, and the top tokens.

    ``cells[layer][token]``; layer 0 is the embedding output, layer ``i`` the output of block
    ``i``, the last layer is the model's real output.
    """

    prompt: str  # the exact text the model was conditioned on (chat template applied)
    target: str
    tokens: tuple[str, ...]  # each target token's text (as in TokenStep.text)
    ids: tuple[int, ...]
    cells: tuple[tuple[LensCell, ...], ...]  # (layers, tokens)
    model: str = ""
    settings: dict = field(default_factory=dict)  # top_k, blocks, norm

    @property
    def n_layers(self) -> int:
        """Number of rows: the embedding output plus one per block."""
        return len(self.cells)

    def layer_name(self, layer: int) -> str:
        if layer == 0:
            return "embeddings"
        return f"layer {layer}" + (" (output)" if layer == self.n_layers - 1 else "")

    def column(self, token: int = 0) -> tuple[LensCell, ...]:
        """The cells of one target token, layer by layer."""
        return tuple(row[token] for row in self.cells)

    def first_top(self, token: int = 0, *, stays: bool = False) -> int | None:
        """The first layer where target token ``token`` is rank 1 (None: never).

        With ``stays=True``: the first layer from which it stays rank 1 up to the output.
        """
        ranks = [c.rank for c in self.column(token)]
        if stays:
            first = None
            for layer in range(len(ranks) - 1, -1, -1):
                if ranks[layer] != 1:
                    break
                first = layer
            return first
        return next((layer for layer, r in enumerate(ranks) if r == 1), None)

    def first_top_name(self, token: int = 0) -> str:
        """``first_top`` in words: "embeddings", "layer 3", or "never"."""
        layer = self.first_top(token)
        return "never" if layer is None else self.layer_name(layer).replace(" (output)", "")

    @property
    def summary(self) -> str:
        """One sentence per target token: where it becomes the top token, its final prob."""
        parts = []
        for j, text in enumerate(self.tokens):
            out = self.cells[-1][j]
            where = self.first_top(j)
            when = ("is never the top token" if where is None
                    else f"is first the top token at {self.first_top_name(j)}")
            parts.append(f"{text!r} {when} (output: rank {out.rank}, p={out.prob:.3g})")
        return "; ".join(parts) + "."

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "target": self.target, "tokens": list(self.tokens),
                "ids": list(self.ids), "cells": [[c.to_dict() for c in row] for row in self.cells],
                "model": self.model, "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, d: dict) -> LayerLens:
        return cls(prompt=str(d["prompt"]), target=str(d["target"]),
                   tokens=tuple(str(t) for t in d["tokens"]), ids=tuple(int(i) for i in d["ids"]),
                   cells=tuple(tuple(LensCell.from_dict(c) for c in row) for row in d["cells"]),
                   model=str(d.get("model", "")), settings=dict(d.get("settings", {})))

    def __str__(self) -> str:
        return lens_text(self)

    def _repr_html_(self) -> str:
        return lens_html(self)

    def figure(self, kind: str = "lines"):
        """A plotly figure: ``"lines"`` (rank and prob per layer) or ``"heatmap"``."""
        return lens_figure(self, kind=kind)


def _first(output):
    """A block's hidden-state output: the tensor itself or the first item of a tuple."""
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def _capture(parts: Anatomy, pos: torch.Tensor):
    """Keep every layer's hidden state at positions ``pos``: [embeddings, block 1, ..., block L].

    Each kept tensor is (batch, len(pos), hidden); nothing else of the forward is kept.
    """
    kept: list[torch.Tensor] = []
    order: list[int] = []

    def before_first(module, args, kwargs):
        h = args[0] if args else kwargs.get("hidden_states")
        if not order and not kept and isinstance(h, torch.Tensor):
            kept.append(h[:, pos.to(h.device)])

    def after(i):
        def hook(module, args, output):
            h = _first(output)
            if isinstance(h, torch.Tensor):
                order.append(i)
                kept.append(h[:, pos.to(h.device)])
        return hook

    handles = [parts.blocks[0].register_forward_pre_hook(before_first, with_kwargs=True)]
    handles += [b.register_forward_hook(after(i)) for i, b in enumerate(parts.blocks)]
    try:
        yield kept, order
    finally:
        for handle in handles:
            handle.remove()


def _check_output(parts: Anatomy, last: torch.Tensor, real: torch.Tensor) -> None:
    """Raise unless the last block's output through norm + head gives the model's logits."""
    mine = parts.logits(last).float()  # (n, vocab)
    real = real.float()
    if mine.shape != real.shape:
        raise StructureError(f"the LM head gives {mine.shape[-1]} logits, the model {real.shape[-1]}")
    finite = torch.isfinite(real)
    if not torch.equal(torch.isfinite(mine), finite) or bool(torch.isnan(real).any()):
        raise StructureError(
            "could not reproduce the model's logits from the last block: the non-finite entries "
            "(masked vocabulary, -inf) differ" + (" (the model's logits are NaN)" if bool(torch.isnan(real).any()) else ""))
    if bool((mine[~finite] != real[~finite]).any()):
        raise StructureError("could not reproduce the model's logits from the last block: +inf against -inf")
    scale = float(real[finite].abs().max().clamp(min=1.0)) if bool(finite.any()) else 1.0
    tol = (2e-3 if last.dtype == torch.float32 else 5e-2) * scale  # kernels, TF32; a wrong piece is far off
    diff = float((mine[finite] - real[finite]).abs().max()) if bool(finite.any()) else 0.0
    if not diff <= tol:
        norm = parts.norm_name or "no final norm"
        raise StructureError(
            f"could not reproduce the model's logits from the last block ({parts.blocks_name}) "
            f"through the final norm ({norm}) and the LM head: max difference {diff:.3g}. The "
            "model does something after its last block that probe did not find; the logit lens "
            "would be wrong"
        )


def _check_prompt(prompt) -> None:
    if isinstance(prompt, str) and prompt == "" or isinstance(prompt, (list, tuple)) and not prompt:
        raise ValueError("the prompt is empty: give the text the target follows")


@torch.no_grad()
def layers(lm, prompt: Prompt, target: str, *, top_k: int = 5, raw: bool | None = None,
           system: str | None = None) -> LayerLens:
    """The logit lens of ``target`` after ``prompt``: rank and prob of each token at each layer.

    Args:
        lm: from :func:`probe.load` (a PEFT handle runs with its adapter on or off as usual).
        prompt: text (chat template applied on a chat LM) or a list of messages.
        target: the answer whose tokens to follow through the layers.
        top_k: top tokens to report per layer and token.
        raw, system: as in :func:`probe.score`.

    Returns:
        A LayerLens with ``num_hidden_layers + 1`` rows; the last equals ``score()``.

    Raises:
        StructureError: the blocks, final norm or LM head could not be found (named), or the
            last layer through them does not reproduce the model's logits.
        ValueError: an empty prompt or target, a bad ``top_k``.
    """
    top_k = check_top_k(top_k)
    _check_prompt(prompt)
    enc = encode(lm, render(lm, prompt, raw=raw, system=system), target)
    parts = anatomy(lm.model)
    n = len(enc.ids) - enc.n_prompt  # answer tokens
    ids, mask = left_pad([enc.ids], lm.pad_id, lm.device)  # (1, seq)
    pos = torch.arange(enc.n_prompt - 1, len(enc.ids) - 1)  # hidden at p predicts token p + 1
    with _capture(parts, pos) as (kept, order):
        real, _ = forward(lm, ids, mask, keep=n + 1, lazy=False)  # one model call: the hooks see one pass
    if order != list(range(len(parts.blocks))) or len(kept) != len(parts.blocks) + 1:
        raise StructureError(
            f"the blocks in {parts.blocks_name} did not each run once, in order (ran: {order[:8]}...); "
            "cannot tell which hidden state belongs to which layer"
        )
    device = real.device
    real = real.rows(torch.arange(n, device=device))[None]  # (1, n, vocab): the rows before each token
    hidden = torch.cat([h.to(device) for h in kept])  # (layers, n, hidden)
    targets = torch.tensor(enc.answer_ids, device=device)
    with lm.active():  # the head (or norm) may carry adapter weights
        _check_output(parts, hidden[-1], real[0, :n])
        flat = hidden.reshape(-1, hidden.shape[-1])  # (layers * n, hidden), layer-major
        all_targets = targets.repeat(len(kept))
        rows = max(1, CHUNK_ELEMENTS // parts.vocab_size)
        chunks = [row_stats(parts.logits(flat[lo : lo + rows]), all_targets[lo : lo + rows], top_k)
                  for lo in range(0, len(flat), rows)]
    cells = []
    for s in chunks:
        for lp, rank, tids, tlps in zip(s.logprob, s.rank, s.top_ids, s.top_logprobs):
            keep = [(i, v) for i, v in zip(tids, tlps) if math.isfinite(v)]
            top = alternatives(lm, [i for i, _ in keep], [v for _, v in keep])
            cells.append(LensCell(rank=int(rank), prob=math.exp(lp), logprob=lp, top=top))
    grid = tuple(tuple(cells[layer * n : (layer + 1) * n]) for layer in range(len(kept)))
    settings = {"top_k": top_k, "blocks": parts.blocks_name, "norm": parts.norm_name}
    return LayerLens(prompt=enc.prompt, target=target, tokens=tuple(enc.texts), ids=tuple(enc.answer_ids),
                     cells=grid, model=lm.name, settings=settings)


register(LayerLens, default_name="layers", inputs=lambda r: {"prompt": r.prompt, "expected": r.target})
