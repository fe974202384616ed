"""Batched forward passes that keep only what is scored, and never all logits at once.

Sequences are always left-padded here (whatever the tokenizer's ``padding_side``), so every
row's last tokens line up at the right edge and the last ``keep`` positions are exactly the
ones to score. Padding is excluded by the attention mask and position ids are computed from
the mask, so a padded row gives the same numbers as the row alone.

The LM head is applied lazily: :func:`forward` taps the hidden states that go into the model's
output embedding, lets the model compute only its last position's logits, and returns a
:class:`Logits` that applies the same head (and the config's scaling and softcapping) to a
few rows at a time. The largest temporary is one chunk of ``rows x vocab`` whatever the
answer length and vocabulary. Every call checks that the lazy head reproduces the model's own
last-position logits; a model that does something else after its head (a multiplier probe
does not know) falls back, once and for good, to the model's full logits.
"""

from __future__ import annotations

import contextlib
import inspect
import math

import torch

from .anatomy import head_scaling

LAZY_HEAD = True  # False: materialize all kept logits (the old path; the bench compares both)


def left_pad(seqs: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (batch, max_len), padding on the left."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only real tokens: 0 at each row's first real token."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def _inner(model):
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _signature(model) -> dict:
    """What the model's forward accepts, read once: logits_to_keep, and the cache's name."""
    cached = getattr(model, "_probe_signature", None)
    if cached is None:
        params = inspect.signature(_inner(model).forward).parameters
        # transformers >= 5.24 names the cache ``cache`` (``past_key_values`` is deprecated);
        # older releases and remote-code models take ``past_key_values``.
        cached = {"logits_to_keep": "logits_to_keep" in params,
                  "cache": "cache" if "cache" in params else "past_key_values"}
        try:
            model._probe_signature = cached
        except AttributeError:  # pragma: no cover - exotic wrappers
            pass
    return cached


def accepts_logits_to_keep(model) -> bool:
    return _signature(model)["logits_to_keep"]


def cache_argument(model) -> str:
    """The keyword under which this model takes (and returns) its KV cache."""
    return _signature(model)["cache"]


class Logits:
    """The logits of the last ``keep`` positions of a batch, (batch, keep, vocab), on demand.

    ``rows(flat)`` gives float32 rows for flat indices ``b * keep + j``; ``last()`` the model's
    own logits at each row's last position (batch, vocab). Nothing here holds more than the
    rows asked for.
    """

    def __init__(self, *, full: torch.Tensor | None = None, hidden: torch.Tensor | None = None,
                 head=None, last: torch.Tensor | None = None):
        self._full = full  # (batch, keep, vocab): the model's logits (eager path)
        self._hidden = hidden  # (batch, keep, hidden_size): the head's input (lazy path)
        self._head = head  # (n, hidden_size) -> (n, vocab)
        self._last = last if last is not None else full[:, -1]  # (batch, vocab)
        batch, keep = (full if full is not None else hidden).shape[:2]
        self.shape = (batch, keep, self._last.shape[-1])

    @property
    def device(self) -> torch.device:
        return self._last.device

    @property
    def lazy(self) -> bool:
        return self._full is None

    def last(self) -> torch.Tensor:
        """(batch, vocab) logits at each row's last position, in the model's dtype."""
        return self._last

    @torch.no_grad()
    def rows(self, flat: torch.Tensor) -> torch.Tensor:
        """float32 (len(flat), vocab) logits of the flat positions ``flat`` (b * keep + j)."""
        if self._full is not None:
            return self._full.reshape(-1, self.shape[-1])[flat.to(self._full.device)].float()
        hidden = self._hidden.reshape(-1, self._hidden.shape[-1])[flat.to(self._hidden.device)]
        return self._head(hidden).float()

    def materialize(self) -> torch.Tensor:
        """All (batch, keep, vocab) logits in float32 (small batches and tests only)."""
        n = self.shape[0] * self.shape[1]
        return self.rows(torch.arange(n, device=self.device)).reshape(self.shape)


def _lazy_head(lm):
    """(head module, hidden -> logits function), or None where the head cannot be applied apart.

    Not apart: the switch is off, the model's logits were found not to be reproducible, the
    head carries adapter weights (they depend on the per-row adapter of a mixed batch), or the
    head has forward hooks of its own (a hook that masks logits may read the whole batch's
    shape or state that rows applied apart do not have).
    """
    model = lm.model
    if not LAZY_HEAD or getattr(model, "_probe_lazy_head_bad", False):
        return None
    inner = _inner(model)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if head is None or hasattr(head, "base_layer") or hasattr(head, "lora_A") or _hooked(head):
        return None
    cap, scale = head_scaling(inner)

    def apply(hidden: torch.Tensor) -> torch.Tensor:
        out = head(hidden)
        if scale != 1.0:
            out = out * scale
        if cap:
            out = torch.tanh(out / cap) * cap
        return out

    return head, apply


def _hooked(module) -> bool:
    """Whether ``module`` (or every module, globally) has forward hooks someone registered."""
    hooks = torch.nn.modules.module
    return any(bool(h) for h in (module._forward_hooks, module._forward_pre_hooks,
                                 getattr(hooks, "_global_forward_hooks", {}),
                                 getattr(hooks, "_global_forward_pre_hooks", {})))


@contextlib.contextmanager
def _tap(head, keep: int):
    """Capture the last ``keep`` positions the head is given; let it compute the last only."""
    box: dict = {}

    def pre(module, args, kwargs):
        x = args[0] if args else None
        if "hidden" in box or "bad" in box or not torch.is_tensor(x) or x.dim() != 3 or x.shape[1] < keep:
            box["bad"] = True  # an unexpected call: leave it alone, use the model's logits
            return None
        box["hidden"] = x[:, -keep:]
        return (x[:, -1:],) + tuple(args[1:]), kwargs

    handle = head.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        yield box
    finally:
        handle.remove()


class NonFiniteLogitsError(ValueError):
    """The model's logits hold NaN (or +inf): no probability can be read from them."""


def check_finite(logits: torch.Tensor, lm=None, where: str = "") -> None:
    """Raise :class:`NonFiniteLogitsError` where ``logits`` (..., vocab) hold NaN or +inf.

    -inf is allowed (a masked vocabulary entry: probability 0); NaN and +inf are not. The
    message names the model, the first bad position (its index along the leading dimensions)
    and the likely causes.
    """
    bad = torch.isnan(logits) | (logits == math.inf)
    if not bool(bad.any()):
        return
    rows = bad.reshape(-1, logits.shape[-1]).any(-1)
    first = int(rows.nonzero()[0, 0])
    at = tuple(int(i) for i in torch.unravel_index(torch.tensor(first), tuple(logits.shape[:-1])))
    nan = bool(torch.isnan(logits).any())
    name = getattr(lm, "name", None) or (type(_inner(lm.model)).__name__ if lm is not None else "the model")
    raise NonFiniteLogitsError(
        f"{name}: the model's logits are {'NaN' if nan else '+inf'} at {where or 'position'} "
        f"{at if len(at) > 1 else at[0]} ({int(rows.sum())} of {rows.numel()} positions checked are "
        f"non-finite); no probability can be read from them. Likely causes: a dtype overflow "
        "(float16 activations: load in bfloat16 or float32) or broken weights (NaN in the checkpoint)")


def _close(a: torch.Tensor, b: torch.Tensor, tol: float | None = None) -> bool:
    """Two logits tensors equal within kernel rounding (the lazy head's last row against the
    model's; a cached step against a full forward). -inf (a masked vocabulary entry) must sit
    at the same places in both, and the finite entries are compared; NaN raises
    :class:`NonFiniteLogitsError` (``-inf - -inf`` would otherwise read as a mismatch)."""
    if tol is None:
        tol = 1e-4 if b.dtype == torch.float32 and a.dtype == torch.float32 else 2e-2
    a, b = a.float(), b.float().to(a.device)
    if a.shape != b.shape:
        return False
    if not a.numel():
        return True
    check_finite(b)
    check_finite(a)
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb):
        return False
    if not bool(fa.any()):
        return True
    scale = 1.0 + float(b[fb].abs().max())
    return bool(((a[fa] - b[fb]).abs().max() <= tol * scale).item())


def _call(lm, kwargs, extra):
    if "adapter_names" in extra:
        return lm.model(**kwargs, **extra)  # per-row adapters: the batch says who is who
    with lm.active():
        return lm.model(**kwargs, **extra)


@torch.no_grad()
def forward(lm, ids, mask, *, keep: int, past=None, pos=None, cache: bool = False,
            lazy: bool = True, **extra):
    """Run the model and return (the last ``keep`` positions' :class:`Logits`, cache).

    Args:
        ids, mask: (batch, n) new tokens and the attention mask over cache + new tokens.
        keep: how many trailing positions' logits are needed.
        past: a cache from a previous call (its positions come first in ``mask``).
        pos: position ids of the new tokens (default: computed from ``mask``).
        cache: return a KV cache (implied when ``past`` is given).
        lazy: allow the lazy head (False: the model's own logits, in exactly one model call,
            for callers that hook the model's blocks).
        extra: more model arguments (``adapter_names`` for a PEFT mixed batch; the handle's
            own adapter switch is then left alone).
    Returns:
        Logits (batch, keep, vocab) and the updated cache (None without ``cache``/``past``).
    """
    if pos is None:
        pos = positions(mask)[:, -ids.shape[1] :]
    sig = _signature(lm.model)
    kwargs = dict(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=cache or past is not None)
    if past is not None:
        kwargs[sig["cache"]] = past
        layers = getattr(past, "layers", None)
        if layers and not any(hasattr(layer, "keys") for layer in layers):
            kwargs["attention_mask"] = mask[:, -ids.shape[1]:]  # a state-space cache: the new tokens only
    if sig["logits_to_keep"]:
        kwargs["logits_to_keep"] = keep
    # On a cache (look-ahead scores) only once the head was verified without one: a failed check
    # there could not call the model again, since the first call already extended the cache.
    verified = getattr(lm.model, "_probe_lazy_head_ok", False)
    tap = _lazy_head(lm) if lazy and keep > 1 and (past is None or verified) else None
    if tap is not None:
        head, apply = tap
        with _tap(head, keep) as box:
            out = _call(lm, kwargs, extra)
        hidden = box.get("hidden")
        if hidden is not None and "bad" not in box:
            last = out.logits[:, -1]
            with lm.active():
                mine = apply(hidden[:, -1])
            check_finite(last, lm, "the last position of batch row")
            if _close(mine, last):
                if past is None:
                    lm.model._probe_lazy_head_ok = True
                return Logits(hidden=hidden, head=apply, last=last), _cache_of(out, sig)
        lm.model._probe_lazy_head_bad = True  # not reproducible: the model's own logits from now on
        if past is not None:
            raise RuntimeError(
                f"{type(_inner(lm.model)).__name__}: the LM head applied apart no longer reproduces the "
                "model's logits on a cached step (it did without a cache); probe stops rather than "
                "give numbers it cannot check. Set probe.forward.LAZY_HEAD = False to use the "
                "model's own logits everywhere.")
    out = _call(lm, kwargs, extra)
    check_finite(out.logits[:, -1], lm, "the last position of batch row")
    return Logits(full=out.logits[:, -keep:]), _cache_of(out, sig)


def _cache_of(out, sig):
    """The returned cache, read under the output's own field name (the other name, where it
    exists as a compatibility alias, warns on transformers >= 5.24)."""
    fields = getattr(out, "__dataclass_fields__", {})
    for name in (sig["cache"], "cache", "past_key_values"):
        if name in fields:
            return getattr(out, name)
    return getattr(out, sig["cache"], None)


# --- feeding tokens on top of a cache and taking them back --------------------------------


def _copy_state(value, clone: bool):
    if torch.is_tensor(value):
        return value.clone() if clone else value
    if isinstance(value, dict):
        return {k: _copy_state(v, clone) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_state(v, clone) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_state(v, clone) for v in value)
    return value


def _appends_only(layer) -> bool:
    """Layers whose update builds new tensors (torch.cat) and never writes into old ones.

    The exact classes only: hybrid caches (falcon_h1, zamba2, ...) subclass DynamicLayer, keep
    their convolution and recurrent states in dicts beside the keys and values, and write
    those in place."""
    try:
        from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer
    except ImportError:  # pragma: no cover - older transformers
        return False
    return type(layer) in (DynamicLayer, DynamicSlidingWindowLayer)


@contextlib.contextmanager
def lookahead(past):
    """Feed tokens on top of ``past`` inside the block; on exit the cache is as it was.

    A sliding-window layer cannot be cropped once its window is full (it dropped the oldest
    states), so the cache's state is kept aside and put back instead. Layers that only append
    keep references (no copy); layers that write in place (linear attention states) are
    copied. Caches of older transformers releases without ``layers`` are cropped back.
    """
    layers = getattr(past, "layers", None)
    if layers is None:
        before = past.get_seq_length()
        yield
        past.crop(before)
        return
    # the cache's own state besides its layers (MiniMaxCache.linear_cache: a list written in place)
    saved_cache = {k: v if k == "layers" else _copy_state(v, True) for k, v in vars(past).items()}
    saved = [(layer, {k: _copy_state(v, not _appends_only(layer)) for k, v in vars(layer).items()})
             for layer in layers]
    versions = [(t, t._version) for _, state in saved for t in state.values() if torch.is_tensor(t)]
    try:
        yield
    finally:
        for tensor, version in versions:
            if tensor._version != version:
                raise RuntimeError(
                    f"a {type(past).__name__} layer was changed in place by a look-ahead forward; "
                    "probe cannot take the watched tokens back out of this cache")
        vars(past).clear()
        vars(past).update(saved_cache)
        for layer, state in saved:
            vars(layer).clear()
            vars(layer).update(state)


@torch.no_grad()
def feed_on_cache(lm, seqs: list[list[int]], past, mask, pos, *, one_by_one: bool = False,
                  **extra) -> Logits | None:
    """Feed row b's ``seqs[b]`` (may be empty) right after its cached tokens, right-padded, inside
    :func:`lookahead` (the cache comes back as it was). Returns the Logits (batch, width, vocab)
    in which row b's position t follows ``seqs[b][t]`` (flat index ``b * width + t``); None when
    nothing is to be fed. ``mask``/``pos``: the cache's attention mask and each row's last position.
    ``one_by_one``: one token per forward (models whose multi-token step on a cache is wrong:
    see :mod:`probe.engine.support`); the logits are then kept, (batch, width, vocab).
    """
    width = max((len(s) for s in seqs), default=0)
    if not width:
        return None
    device = mask.device
    ids = torch.tensor([s + [lm.pad_id] * (width - len(s)) for s in seqs], device=device)
    real = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=mask.dtype, device=device)
    step_pos = pos[:, None] + 1 + torch.arange(width, device=pos.device)
    with lookahead(past):
        if not one_by_one or width == 1:
            out, _ = forward(lm, ids, torch.cat([mask, real], dim=1), keep=width, past=past, pos=step_pos, **extra)
            return out
        rows = []
        for t in range(width):
            out, _ = forward(lm, ids[:, t : t + 1], torch.cat([mask, real[:, : t + 1]], dim=1), keep=1,
                             past=past, pos=step_pos[:, t : t + 1], **extra)
            rows.append(out.last())
    return Logits(full=torch.stack(rows, dim=1))
