"""Where a causal LM keeps its blocks, its final norm and its LM head, found from its module tree.

    >>> a = anatomy(lm.model)
    >>> a.blocks                       # the nn.ModuleList of transformer blocks, in order
    ModuleList(...)
    >>> ids = lm.tokenizer("The capital of France", return_tensors="pt").input_ids
    >>> hidden = lm.model(ids, output_hidden_states=True).hidden_states[1]  # after block 0
    >>> logits = a.logits(hidden)      # (..., hidden) -> (..., vocab): final norm, head, scaling
    >>> logits.shape[-1] == lm.model.config.vocab_size
    True

Nothing here branches on model names:

* the LM head is ``get_output_embeddings()``;
* the blocks are the shallowest ``nn.ModuleList`` with ``num_hidden_layers`` entries;
* the final norm is the norm-like module (vector parameters of the hidden size, or a
  parameter-free module whose class is a norm) registered after the blocks in the same parent;
* the logits are then scaled/capped as the config says (``final_logit_softcapping``,
  ``logit_scale``, ``logits_scaling``).

Callers that must be exact (the logit lens) also check that the last block's output through
:meth:`Anatomy.logits` gives the model's own logits, so a structure guessed wrong is an error,
never a silent wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class StructureError(ValueError):
    """probe could not find a piece of the model (its blocks, final norm or LM head)."""


def _inner(model):
    """The transformers model under a PEFT wrapper (LoRA layers are injected in place)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _text_config(model):
    cfg = model.config
    return getattr(cfg, "get_text_config", lambda: cfg)()


def _norm_like(module: nn.Module, hidden: int | None) -> bool:
    params = list(module.parameters(recurse=True))
    if params:
        return hidden is not None and all(p.dim() == 1 and p.shape[0] == hidden for p in params)
    return "norm" in type(module).__name__.lower()


@dataclass(frozen=True)
class Anatomy:
    """The pieces of a causal LM that turn a hidden state into next-token logits."""

    blocks: nn.ModuleList  # transformer blocks, in the order they run
    blocks_name: str  # dotted path in the model, for messages
    norm: nn.Module | None  # applied to the last block's output before the head (None: none)
    norm_name: str | None
    head: nn.Module  # hidden -> vocab
    softcap: float | None = None  # logits = cap * tanh(logits / cap)
    scale: float = 1.0  # logits *= scale (after the head, before the cap)

    @property
    def vocab_size(self) -> int:
        weight = getattr(self.head, "weight", None)
        return int(weight.shape[0]) if weight is not None else int(self.head.out_features)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., vocab) in the model's dtype, as the model's last step does it."""
        if self.norm is not None:
            hidden = self.norm(hidden)
        weight = getattr(self.head, "weight", None)
        if weight is not None:
            hidden = hidden.to(weight.device)
        out = self.head(hidden)
        if self.scale != 1.0:
            out = out * self.scale
        if self.softcap:
            out = torch.tanh(out / self.softcap) * self.softcap
        return out


def _find_blocks(model, n_layers: int | None) -> tuple[str, nn.ModuleList]:
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.ModuleList) and len(m) > 0 and (n_layers is None or len(m) == n_layers)]
    if not found:
        want = f"with num_hidden_layers={n_layers} entries" if n_layers is not None else "at all"
        raise StructureError(
            f"could not find the list of transformer blocks of {type(model).__name__}: "
            f"no nn.ModuleList {want}"
        )
    depth = min(name.count(".") for name, _ in found)
    shallowest = [(name, m) for name, m in found if name.count(".") == depth]
    if len(shallowest) > 1:
        names = ", ".join(name for name, _ in shallowest)
        raise StructureError(
            f"could not tell which list holds the transformer blocks of {type(model).__name__}: "
            f"several candidates ({names})"
        )
    return shallowest[0]


def _find_norm(model, blocks_name: str, hidden: int | None) -> tuple[str | None, nn.Module | None]:
    parent_name, _, child = blocks_name.rpartition(".")
    parent = model.get_submodule(parent_name)
    after = False
    for name, module in parent.named_children():
        if name == child:
            after = True
        elif after and _norm_like(module, hidden):
            return (f"{parent_name}.{name}" if parent_name else name), module
    # Some register it before the blocks (OPT's decoder.final_layer_norm): a lone norm-like
    # sibling of the blocks whose name says final (callers self-check the result).
    before = [(name, m) for name, m in parent.named_children()
              if name != child and "final" in name and _norm_like(m, hidden)]
    if len(before) == 1:
        name, module = before[0]
        return (f"{parent_name}.{name}" if parent_name else name), module
    return None, None


def _scaling(cfg) -> tuple[float | None, float]:
    cap = getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logits_soft_cap", None)
    scale = 1.0
    for key, invert in (("logit_scale", False), ("logits_scaling", True)):
        value = getattr(cfg, key, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value not in (0, 1):
            scale = scale / value if invert else scale * value
    return (float(cap) if cap else None), scale


def head_scaling(model) -> tuple[float | None, float]:
    """(softcap, scale) the model applies to its LM head's output, from its (text) config."""
    return _scaling(_text_config(_inner(model)))


def anatomy(model) -> Anatomy:
    """Find the blocks, final norm and LM head of ``model`` (a transformers or PEFT causal LM).

    Raises:
        StructureError: a piece could not be found; the message names it.
    """
    inner = _inner(model)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if head is None:
        raise StructureError(
            f"could not find the LM head of {type(inner).__name__}: get_output_embeddings() "
            "gives nothing (is this a causal LM?)"
        )
    cfg = _text_config(inner)
    n_layers = getattr(cfg, "num_hidden_layers", None)
    hidden = getattr(cfg, "hidden_size", None)
    blocks_name, blocks = _find_blocks(inner, n_layers if isinstance(n_layers, int) else None)
    norm_name, norm = _find_norm(inner, blocks_name, hidden)
    cap, scale = _scaling(cfg)
    return Anatomy(blocks=blocks, blocks_name=blocks_name, norm=norm, norm_name=norm_name,
                   head=head, softcap=cap, scale=scale)
