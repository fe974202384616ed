"""TracIn on the adapter's parameters: each training example's loss gradient against the query's.

For checkpoint c (weight eta_c, :mod:`probe.attribution.checkpoints`), example z and query q::

    dot(z, q) = sum_c  eta_c * -<grad L_z, grad Q_q>        (TracIn)
    cos(z, q) = sum_c  eta_c * -cos(grad L_z, grad Q_q) / sum_c eta_c

``L_z`` is the example's mean token loss over the tokens the trainer's mask scores (the very
``Tokens`` ``probe.data_loss`` reads, :mod:`probe.train.masks`), ``Q_q`` the query's badness
(:mod:`probe.attribution.query`). One SGD step on z moves Q by about ``-eta <grad L_z, grad Q>``,
so a positive score says "training on this example pushed the case toward the wrong answer".

Gradients are taken on the adapter's parameters only (LoRA A and B of the checkpoint's adapter;
for a plain model, the parameters whose names contain one of ``modules``, by default the last
decoder layer's). Streamed: the query gradients are computed once per checkpoint and kept
(queries x parameters); each example's gradient is reduced to its scores as soon as it is made,
so memory does not grow with the dataset. Several queries share every example's gradient: the
cost is one backward per example and per query, never per pair. With many queries the kept
query gradients are projected (``projection``: a seeded Gaussian sketch of each parameter
matrix from both sides, ``L G R^T``, which keeps inner products in expectation).
"""

from __future__ import annotations

import contextlib
import math
import re

import torch

from .query import Query, query_value, tail_logits

_LAYER = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")
AUTO_BYTES = 256 * 2**20  # "auto" projects when the query gradients would hold more than this


def trainable(lm, adapter: str | None, modules=None) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) the gradients are taken on (module docstring).

    Raises:
        ValueError: nothing matches (names what was looked for).
    """
    named = list(lm.model.named_parameters())
    if adapter is not None and modules is None:
        keys = tuple(f".{part}.{adapter}." for part in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"))
        out = [(n, p) for n, p in named if any(k in n + "." for k in keys)]
        what = f"LoRA A/B weights of adapter {adapter!r}"
    elif modules is not None:
        mods = [modules] if isinstance(modules, str) else list(modules)
        out = [(n, p) for n, p in named if any(m in n for m in mods) and "lora_" not in n]
        what = f"parameters named like {mods}"
    else:
        layers = [int(m.group(1)) for n, _ in named if (m := _LAYER.search(n))]
        if not layers:
            raise ValueError("no decoder layers found by name: give modules= (parameter name parts)")
        top = f".{max(layers)}."
        out = [(n, p) for n, p in named if (m := _LAYER.search(n)) and m.group(0).endswith(top)]
        what = f"the last decoder layer ({max(layers)})"
    out = [(n, p) for n, p in out if p.is_floating_point()]
    if not out:
        raise ValueError(f"no parameters to take gradients on: none of the {what}")
    return out


@contextlib.contextmanager
def gradients_on(model, params):
    """Only ``params`` require grad inside; every parameter's flag is restored after."""
    before = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in before:
            p.requires_grad_(False)
        for _, p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


def flat_grad(value: torch.Tensor, params) -> torch.Tensor:
    """d value / d params as one float32 vector (a parameter the value does not reach: zeros)."""
    ps = [p for _, p in params]
    grads = torch.autograd.grad(value, ps, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float() for p, g in zip(ps, grads)])


def example_loss(lm, t) -> torch.Tensor:
    """The example's mean token loss over its masked tokens (differentiable, float32)."""
    first = t.mask.index(True)
    lp = torch.log_softmax(tail_logits(lm, t.ids, first), -1)  # (len - first, vocab)
    targets = torch.tensor(t.ids[first:], device=lp.device)
    keep = torch.tensor(t.mask[first:], device=lp.device)
    return -lp.gather(-1, targets[:, None])[:, 0][keep].mean()


class Projection:
    """A seeded two-sided Gaussian sketch per parameter matrix: G (m x n) -> L G R^T with L
    (k x m), R (k x n) of N(0, 1/k) entries (a side of k >= its size is left as is), so
    E[<P a, P b>] = <a, b>. 1-D parameters are rows (1 x n)."""

    def __init__(self, params, dim: int, seed: int = 0):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"projection must be a positive int (dimensions per matrix side), got {dim!r}")
        gen = torch.Generator().manual_seed(seed)
        self.parts = []
        for _, p in params:
            m, n = (1, p.numel()) if p.dim() < 2 else (p.shape[0], p.numel() // p.shape[0])
            left = torch.randn(dim, m, generator=gen) / math.sqrt(dim) if dim < m else None
            right = torch.randn(dim, n, generator=gen) / math.sqrt(dim) if dim < n else None
            self.parts.append((m, n, left, right))

    @property
    def size(self) -> int:
        return sum((m if lf is None else lf.shape[0]) * (n if rt is None else rt.shape[0])
                   for m, n, lf, rt in self.parts)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        out, at = [], 0
        for m, n, left, right in self.parts:
            g = flat[at:at + m * n].reshape(m, n)
            at += m * n
            if left is not None:
                g = left.to(g.device) @ g
            if right is not None:
                g = g @ right.to(g.device).T
            out.append(g.reshape(-1))
        return torch.cat(out)


def _projection(params, n_queries: int, projection, seed: int):
    if projection is None:
        return None
    if projection == "auto":
        size = sum(p.numel() for _, p in params)
        return Projection(params, 32, seed) if n_queries * size * 4 > AUTO_BYTES else None
    return Projection(params, projection, seed)


def gradient_scores(lm, checkpoints, queries: list[Query], examples, *, modules=None,
                    projection="auto", seed: int = 0, progress=None):
    """TracIn dot and cosine of every example (a :class:`probe.train.masks.Tokens`) against
    every query: two (examples x queries) float64 tensors, and whether a projection was used.

    ``lm`` is the tuned handle; its active adapter is active again afterwards."""
    n, k = len(examples), len(queries)
    dot = torch.zeros(n, k, dtype=torch.float64)
    cos = torch.zeros(n, k, dtype=torch.float64)
    start = lm.active_adapter
    projected = False
    total = math.fsum(c.weight for c in checkpoints)
    try:
        for c in checkpoints:
            adapter = c.name if c.name in lm.adapters else None
            if adapter is not None:
                lm.use_adapter(adapter)
            params = trainable(lm, adapter, modules)
            proj = _projection(params, k, projection, seed)
            projected = projected or proj is not None
            reduce = proj or (lambda g: g)
            with gradients_on(lm.model, params), lm.active():
                qg = torch.stack([reduce(flat_grad(query_value(lm, q), params)) for q in queries])  # (k, P)
                qn = qg.norm(dim=1).double()
                for i, t in enumerate(examples):
                    g = reduce(flat_grad(example_loss(lm, t), params))  # (P,)
                    d = -(qg @ g).double()  # (k,): + means the step raised the query's badness
                    dot[i] += c.weight * d
                    norm = qn * g.norm().double()
                    cos[i] += c.weight * torch.where(norm > 0, d / norm.clamp_min(1e-300), 0.0)
                    if progress is not None:
                        progress(1)
    finally:
        if start is not None and start in lm.adapters:
            lm.use_adapter(start)
    return dot, cos / total, projected


def gradient_batch(base, tuned, batch, *, checkpoints, queries, modules=None, projection="auto", seed: int = 0):
    """One batch of examples on an engine's worker (module-level, picklable): the queries are
    broadcast, each worker makes their gradients on its own pair; ``[(dot row, cos row,
    projected)]`` per example, rows over the queries."""
    dot, cos, projected = gradient_scores(tuned, checkpoints, queries, batch, modules=modules,
                                          projection=projection, seed=seed)
    return [(dot[i].tolist(), cos[i].tolist(), projected) for i in range(len(batch))]
