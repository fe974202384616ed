"""Is it more than noise? The shift map's figures as percentiles of random adapters' figures.

    >>> s = probe.shift(base, tuned, ["Describe the sea.", "Name a fruit."], max_new_tokens=8)
    >>> n = probe.noise_floor(base, tuned, s, seeds=10, cache_dir="cache")  # 10 random adapters
    >>> pct = n.percentile("mean_kl"), n.prompt_percentiles("kl")   # 100: above every one

The null: for each seed, every LoRA module of the active adapter gets random A and B of the
trained ones' shapes (same rank, same modules), B rescaled so that the module's update
``scaling * B @ A`` has the trained update's Frobenius norm; then :func:`probe.shift` runs on the
same prompts the same way (greedy answers are each random adapter's own). A figure's percentile
is the share of null values below it (ties count half), times 100: 100 means above every random
adapter of that size. The trained weights are put back afterwards, also on error.

The null's figures are cached per pair under ``$PROBE_CACHE/noise/`` (a file named by the
adapter's hash, the prompts' hash and the seeds; written atomically), so asking again is free.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from ..core.files import write_atomically
from ..core.registry import register
from ..models.gguf import cache_root
from ..render.noise import noise_body, noise_html, noise_text
from .map import Shift, shift

FIGURES = ("mean_kl", "shifted_ratio")  # of the whole map
PROMPT_FIGURES = ("kl", "shifted")  # of each prompt: KL summed over its answer, share of shifted tokens
CACHE_VERSION = 1


def percentile(value: float, null) -> float:
    """100 x (null values below ``value`` + half the ties) / len(null)."""
    null = [v for v in null if not math.isnan(v)]
    if not null or math.isnan(value):
        return math.nan
    below = sum(v < value for v in null)
    ties = sum(v == value for v in null)
    return 100.0 * (below + 0.5 * ties) / len(null)


def _strict(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _figures(s: Shift) -> dict:
    return {"mean_kl": s.mean_kl, "shifted_ratio": s.shifted_ratio,
            "kl": [p.kl for p in s.prompts],
            "shifted": [p.shifted / len(p.positions) if p.positions else math.nan for p in s.prompts]}


@dataclass(frozen=True)
class NoiseFloor:
    """The trained adapter's shift figures, the same figures under ``seeds`` random adapters."""

    observed: dict  # mean_kl, shifted_ratio, kl (per prompt), shifted (per prompt)
    null: tuple[dict, ...]  # one dict like ``observed`` per seed
    seeds: tuple[int, ...]
    prompts: tuple = ()  # as given (str or messages), for the views
    adapter: str | None = None
    adapter_hash: str = ""
    models: dict[str, str] = field(default_factory=dict)
    cache_file: str | None = None
    from_cache: bool = False

    def percentile(self, figure: str) -> float:
        """The observed ``mean_kl`` or ``shifted_ratio`` as a percentile of the null."""
        if figure not in FIGURES:
            raise ValueError(f"figure must be one of {FIGURES}, got {figure!r}")
        return percentile(self.observed[figure], [n[figure] for n in self.null])

    def prompt_percentiles(self, figure: str = "kl") -> list[float]:
        """Each prompt's ``kl`` or ``shifted`` as a percentile of that prompt's null values."""
        if figure not in PROMPT_FIGURES:
            raise ValueError(f"figure must be one of {PROMPT_FIGURES}, got {figure!r}")
        return [percentile(v, [n[figure][i] for n in self.null]) for i, v in enumerate(self.observed[figure])]

    def to_dict(self) -> dict:
        """Strict JSON: a NaN figure (a prompt with an empty answer) is written as null."""
        return _strict(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseFloor":
        fix = lambda f: {k: (math.nan if v is None else v) if not isinstance(v, list)  # noqa: E731
                         else [math.nan if x is None else x for x in v] for k, v in f.items()}
        return cls(fix(d["observed"]), tuple(fix(n) for n in d["null"]), tuple(int(s) for s in d["seeds"]),
                   tuple(d.get("prompts", ())), d.get("adapter"), str(d.get("adapter_hash", "")),
                   {str(k): str(v) for k, v in d.get("models", {}).items()}, d.get("cache_file"),
                   bool(d.get("from_cache", False)))

    def __eq__(self, other) -> bool:  # NaN figures (an empty answer) compare equal to themselves
        return isinstance(other, NoiseFloor) and self.to_dict() == other.to_dict()

    __hash__ = None

    def __str__(self) -> str:
        return noise_text(self)

    def _repr_html_(self) -> str:
        return noise_html(self)


register(NoiseFloor, default_name="noise_floor", section=noise_body)


# --- the random adapters --------------------------------------------------------------------


def lora_modules(tuned) -> list[tuple[str, torch.nn.Module, str]]:
    """(name, module, adapter) of every LoRA layer of the active adapter, in model order."""
    name = tuned.active_adapter
    if name is None:
        raise ValueError("a noise floor needs a LoRA pair (probe.load_pair(base, adapter=...)) whose tuned "
                         "side runs an adapter: the null is random adapters of the same rank and modules")
    out = [(n, m, name) for n, m in tuned.model.named_modules()
           if hasattr(m, "lora_A") and name in getattr(m, "lora_A", {})]
    if not out:
        raise ValueError(f"adapter {name!r} has no LoRA A/B layers (a noise floor supports LoRA adapters)")
    for n, m in tuned.model.named_modules():  # an update that is not scaling * B @ A: no matched null
        if name in (getattr(m, "lora_embedding_A", None) or {}) or name in (getattr(m, "lora_magnitude_vector", None) or {}):
            raise ValueError(f"adapter {name!r} has an embedding LoRA or DoRA layer ({n}): the noise floor "
                             "matches plain LoRA updates scaling * B @ A only")
    return out


def _update(module, name) -> torch.Tensor:
    a, b = module.lora_A[name].weight.detach().float(), module.lora_B[name].weight.detach().float()
    return module.scaling[name] * (b @ a)  # (out, in)


def adapter_hash(tuned) -> str:
    """SHA-256 of the active adapter's LoRA weights (names, shapes, values)."""
    h = hashlib.sha256()
    for n, m, name in lora_modules(tuned):
        for part in (m.lora_A[name].weight, m.lora_B[name].weight):
            t = part.detach().float().cpu().contiguous()
            h.update(f"{n}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


@contextmanager
def random_adapter(tuned, seed: int):
    """The active adapter's A and B replaced by random ones matched in update norm, then restored."""
    modules = lora_modules(tuned)
    saved = [(m.lora_A[name].weight.detach().clone(), m.lora_B[name].weight.detach().clone())
             for _, m, name in modules]
    try:
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for (_, m, name), (a0, b0) in zip(modules, saved):
                target = float(torch.linalg.norm(_update(m, name)))
                a = torch.randn(a0.shape, generator=g)
                b = torch.randn(b0.shape, generator=g)
                norm = float(torch.linalg.norm(m.scaling[name] * (b @ a)))
                b = b * (target / norm if norm > 0 else 0.0)
                m.lora_A[name].weight.copy_(a.to(a0.dtype))
                m.lora_B[name].weight.copy_(b.to(b0.dtype))
        yield
    finally:
        with torch.no_grad():
            for (_, m, name), (a0, b0) in zip(modules, saved):
                m.lora_A[name].weight.copy_(a0)
                m.lora_B[name].weight.copy_(b0)


# --- the floor ---------------------------------------------------------------------------------


def _key(prompts, settings: dict) -> str:
    return hashlib.sha256(json.dumps([list(map(str, prompts)), settings], sort_keys=True).encode()).hexdigest()


def noise_floor(base, tuned, prompts, *, seeds: int | list[int] = 10, answers: str = "greedy",
                max_new_tokens: int = 48, marginal: int = 3, batch_size: int = 16, cache: bool = True,
                cache_dir=None, progress: bool = False) -> NoiseFloor:
    """The shift figures of the trained adapter as percentiles of ``seeds`` random adapters'.

    Args:
        base, tuned: a LoRA pair (``probe.load_pair(src, adapter=...)``).
        prompts: texts, message lists or CaseSpecs; or a :class:`probe.Shift` (its prompts, and
            its settings: answers, max_new_tokens, marginal; a Shift of given answers re-scores
            those answers, so its shifted share equals the null's: only KL says something then).
        seeds: how many random adapters (seeds 0..n-1; at least 10) or the seeds themselves.
        answers: "greedy" (each adapter's own) or "expected" (CaseSpecs' expected answers).
        cache: read and write the null's figures under ``cache_dir`` (default ``$PROBE_CACHE``).
    """
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seeds) < 10:
        raise ValueError(f"a noise floor needs at least 10 seeds (a percentile of fewer says little), got {len(seeds)}")
    if isinstance(prompts, Shift):
        observed_shift = prompts
        st = observed_shift.settings
        answers = st.get("answers", answers)
        given = [p.answer for p in observed_shift.prompts] if answers == "given" else None
        max_new_tokens, marginal = int(st.get("max_new_tokens", max_new_tokens)), observed_shift.marginal
        items = [p.prompt for p in observed_shift.prompts]
    else:
        items, given, observed_shift = list(prompts), None, None
    how = given if given is not None else answers
    kw = dict(answers=how, max_new_tokens=max_new_tokens, marginal=marginal, batch_size=batch_size)
    if observed_shift is None:
        observed_shift = shift(base, tuned, items, progress=progress, **kw)
    digest = adapter_hash(tuned)
    settings = {"answers": how, "max_new_tokens": max_new_tokens, "marginal": marginal, "seeds": seeds,
                "version": CACHE_VERSION}
    prompt_key = _key([p.prompt if hasattr(p, "prompt") else p for p in items]
                      + [p.expected if hasattr(p, "expected") else "" for p in items], settings)
    path = cache_root(cache_dir) / "noise" / f"{digest[:16]}-{prompt_key[:16]}-{len(seeds)}seeds.json"
    null, from_cache = None, False
    if cache and path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("adapter_hash") == digest and stored.get("key") == prompt_key:
                null, from_cache = stored["null"], True
        except (OSError, ValueError, KeyError):
            null = None  # unreadable: computed again and rewritten
    if null is None:
        null = []
        for seed in seeds:
            with random_adapter(tuned, seed):
                null.append(_figures(shift(base, tuned, items, **kw)))
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, json.dumps(_strict({"adapter_hash": digest, "key": prompt_key,
                                                       "settings": settings, "null": null}), allow_nan=False))
    fix = lambda f: {k: (math.nan if v is None else v) if not isinstance(v, list)  # noqa: E731
                     else [math.nan if x is None else x for x in v] for k, v in f.items()}
    return NoiseFloor(_figures(observed_shift), tuple(fix(n) for n in null), tuple(seeds),
                      tuple(p.prompt for p in observed_shift.prompts), tuned.active_adapter, digest,
                      {"base": base.name, "tuned": tuned.name}, str(path) if cache else None, from_cache)
