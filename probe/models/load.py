"""Loading: a model, its tokenizer and its prompt format in one handle (``LM``).

    >>> import probe
    >>> lm = probe.load(folder)                          # a folder, hub name or .gguf file
    >>> base, tuned = probe.load_pair(folder, adapter=adapter)   # adapter: a PEFT adapter folder

``load_pair(..., adapter=...)`` wraps one set of weights in a PEFT model: ``tuned`` runs with
the adapter enabled, ``base`` with it disabled, so the pair costs the memory of one model.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.engines import WeightsNotLoaded, weights_not_loaded  # noqa: F401  (WeightsNotLoaded re-exported)
from ..engine.identical import IdenticalModelsWarning, warn_if_same  # noqa: F401  (re-exported)
from .inputs import model_input
from .lora_check import check_wrapped_layers
from .sources import from_pretrained


@dataclass(eq=False)
class LM:
    """A causal LM ready for probing.

    Attributes:
        model: the ``transformers`` (or PEFT) causal LM, in eval mode.
        tokenizer: a *fast* tokenizer (character offsets are required).
        chat: render prompts through the tokenizer's chat template by default.
        name: a short human name (source path or hub name, plus adapter).
        source: where the weights came from; ``adapter``: the PEFT adapter path, if any.
        adapter_enabled: for a model wrapped with a PEFT adapter, whether this handle runs
            with it (tuned) or without it (base). None for plain models.
    """

    model: Any
    tokenizer: Any
    chat: bool = False
    name: str = "model"
    source: str = ""
    adapter: str | None = None
    adapter_enabled: bool | None = None
    adapter_paths: dict[str, str] = field(default_factory=dict)  # adapter name -> its folder
    recipe: dict | None = field(default=None, repr=False)  # load()'s arguments (models/recipe.py)
    has_weights: bool = True  # False: load(weights=False), a driver that plans for remote workers
    _text_cache: dict = field(default_factory=dict, repr=False)
    _aux: dict = field(default_factory=dict, repr=False)  # per-tokenizer helpers (prompts.py)

    @property
    def device(self) -> torch.device:
        """Where inputs go: the input embedding's execution device (a model split or offloaded
        by accelerate keeps some weights on "meta" until they run)."""
        get = getattr(self.model, "get_input_embeddings", None)
        emb = get() if callable(get) else None
        if emb is not None:
            hook = getattr(emb, "_hf_hook", None)
            where = getattr(hook, "execution_device", None)
            if where is not None:
                return torch.device(f"cuda:{where}" if isinstance(where, int) else where)
            weight = getattr(emb, "weight", None)
            if weight is not None and weight.device.type != "meta":
                return weight.device
        for p in self.model.parameters():
            if p.device.type != "meta":
                return p.device
        return torch.device("cpu")

    @property
    def max_length(self) -> int | None:
        """The model's context length, read from its config (None if it states none)."""
        cfg = self.model.config
        cfg = getattr(cfg, "get_text_config", lambda: cfg)()
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def pad_id(self) -> int:
        """Any valid id to fill padding with (padding is always masked out)."""
        tok = self.tokenizer
        for value in (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id):
            if value is not None:
                return int(value)
        return 0

    @property
    def eos_ids(self) -> set[int]:
        """Token ids that end a generation: the tokenizer's and the generation config's EOS."""
        ids: set[int] = set()
        gen = getattr(self.model, "generation_config", None)
        for value in (self.tokenizer.eos_token_id, getattr(gen, "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    def token_text(self, token_id: int) -> str:
        """The text of one token decoded on its own (cached: used for top-k labels)."""
        text = self._text_cache.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
            self._text_cache[token_id] = text
        return text

    @property
    def adapters(self) -> list[str]:
        """Names of the PEFT adapters loaded on the model (empty for a plain model)."""
        return list(getattr(self.model, "peft_config", {}) or {})

    @property
    def active_adapter(self) -> str | None:
        """The PEFT adapter this handle runs with (None: a plain model, or the base side)."""
        active = getattr(self.model, "active_adapter", None) if self.adapter_enabled else None
        return active if isinstance(active, str) else None

    def use_adapter(self, name: str) -> None:
        """Make adapter ``name`` the one a tuned handle runs with (shared by its pair)."""
        if name not in self.adapters:
            raise ValueError(f"no adapter named {name!r}; loaded: {self.adapters}")
        self.model.set_adapter(name)

    @contextlib.contextmanager
    def active(self):
        """Run the shared weights as this handle: adapter on (tuned) or off (base)."""
        if self.adapter_enabled is False:
            with self.model.disable_adapter():
                yield
        else:
            yield

    def inputs(self, prompt, answer: str | None = None, *, raw: bool | None = None,
               system: str | None = None):
        """The exact token ids and texts this model is given for ``prompt`` (+ ``answer``):
        chat template applied or not, BOS written twice, special tokens. See :mod:`probe.models.inputs`."""
        return model_input(self, prompt, answer, raw=raw, system=system)

    def __repr__(self) -> str:
        kind = "chat" if self.chat else "raw"
        where = f"device={self.device}" if self.has_weights else "no weights: plans for remote workers"
        return f"LM({self.name!r}, {kind}, {where})"


def _dtype(dtype) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        value = getattr(torch, dtype.replace("torch.", ""), None)
        if isinstance(value, torch.dtype):
            return value
    raise ValueError(f"dtype must be a torch.dtype or a name like 'float32', got {dtype!r}")


def _check_tokenizer(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            "probe needs a fast tokenizer (character offsets); got "
            f"{type(tokenizer).__name__}. Load it with AutoTokenizer(..., use_fast=True)."
        )


def _check_adapter_folder(adapter) -> Path:
    path = Path(adapter)
    if not path.is_dir():
        raise FileNotFoundError(f"adapter folder {str(adapter)!r} does not exist")
    if not (path / "adapter_config.json").is_file():
        raise ValueError(f"{str(adapter)!r} is not a PEFT adapter: it has no adapter_config.json")
    return path


def _adapter_paths(adapter) -> dict[str, str]:
    if adapter is None:
        return {}
    named = dict(adapter) if isinstance(adapter, dict) else {"default": adapter}
    return {str(name): str(path) for name, path in named.items()}


def _attach_adapter(model, adapter, check: bool = True):
    """Wrap ``model`` with one PEFT adapter, or several named ones ({name: folder}).

    With several, the first is active; ``LM.use_adapter(name)`` switches.
    """
    named = dict(adapter) if isinstance(adapter, dict) else {"default": adapter}
    if not named:
        raise ValueError("adapter={} names no adapter")
    paths = {name: _check_adapter_folder(p) for name, p in named.items()}
    try:
        from peft import PeftModel
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("loading an adapter needs peft: pip install 'token-probe[lora]'") from err
    (first, first_path), *rest = paths.items()
    with warnings.catch_warnings():  # transformers 5 deprecation that peft triggers; not the user's
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if not check:  # weights=False: the adapter's tensors are not kept either, as intended
            warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*", category=UserWarning)
        wrapped = PeftModel.from_pretrained(model, str(first_path), adapter_name=first)
        for name, path in rest:
            wrapped.load_adapter(str(path), adapter_name=name)
    wrapped.set_adapter(first)
    if check:  # runs a zero row through each wrapped layer: nothing to run without weights
        check_wrapped_layers(wrapped, paths)
    return wrapped


def load(
    source,
    *,
    adapter: str | os.PathLike | dict | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    chat: bool | None = None,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    offload_folder: str | os.PathLike | None = None,
    model_kwargs: dict | None = None,
    name: str | None = None,
    weights: bool = True,
) -> LM:
    """Load a causal LM for probing.

    Args:
        source: a local model folder, a ``.gguf`` file, a hub name, or an already loaded
            ``(model, tokenizer)`` pair.
        adapter: a PEFT (LoRA) adapter folder to apply on top, or ``{name: folder}`` for
            several (the first is active; ``LM.use_adapter(name)`` switches).
        device: where to put the model (ignored with ``device_map``).
        dtype: weights' dtype (``"float32"``, ``torch.bfloat16``, ...). Log-probabilities are
            always computed in float32.
        chat: render prompts with the chat template. Default: the tokenizer has one.
        device_map: passed to transformers/accelerate (``"auto"`` to spread a big model over
            the GPUs, then CPU, then disk).
        max_memory: with ``device_map``, the most memory per device (``{0: "20GiB", "cpu":
            "60GiB"}``); what does not fit is offloaded.
        offload_folder: where accelerate puts the layers offloaded to disk.
        model_kwargs: anything else for ``from_pretrained`` (``attn_implementation``,
            ``quantization_config``, ``trust_remote_code``, ...).
        name: label for reports (default: the source and adapter).
        weights: False loads the tokenizer, the config and the adapters' names but no weights
            (on torch's "meta" device): enough for a driver that forms the batches a Ray engine's
            workers run (``engine=probe.ray_engine(...)``, ``--ray``), in no memory. Running it
            here raises :class:`WeightsNotLoaded`. Its recipe loads the real weights.

    Raises:
        FileNotFoundError: a local source or adapter that does not exist.
        ValueError: an adapter folder that is not a PEFT adapter, a bad dtype.
        OSError: a hub name that cannot be fetched (one attempt, no retry loop).
    """
    torch_dtype = _dtype(dtype)
    if isinstance(source, (tuple, list)) and len(source) == 2:
        model, tokenizer = source
        label = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        if torch_dtype is not None:
            model = model.to(torch_dtype)
    elif isinstance(source, (str, os.PathLike)):
        label = str(source)
        extra = dict(model_kwargs or {})
        if max_memory is not None:
            extra["max_memory"] = max_memory
        if offload_folder is not None:
            extra["offload_folder"] = str(offload_folder)
        if extra.keys() & {"max_memory", "offload_folder"} and device_map is None:
            raise ValueError("max_memory and offload_folder need device_map (e.g. device_map='auto')")
        model, tokenizer = from_pretrained(str(source), torch_dtype, device_map if weights else "meta",
                                            extra)
    else:
        raise TypeError(
            "source must be a path, a hub name or a (model, tokenizer) pair, "
            f"got {type(source).__name__}"
        )
    if not weights and not isinstance(source, (str, os.PathLike)):
        raise ValueError("weights=False needs a path or hub name (the workers load the weights from it), "
                         "not a loaded (model, tokenizer)")
    _check_tokenizer(tokenizer)
    if device is not None and device_map is None and weights:
        model = model.to(device)
    if adapter is not None:
        model = _attach_adapter(model, adapter, check=weights)
    if not weights:
        model = model.to("meta")  # a second adapter's tensors too: nothing held here
    model.eval()
    if chat is None:
        chat = bool(getattr(tokenizer, "chat_template", None))
    elif chat and not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat=True but the tokenizer has no chat template")
    recipe = None if not isinstance(source, (str, os.PathLike)) else {
        "source": str(source), "adapter": _plain(adapter), "device": _plain(device),
        "dtype": None if torch_dtype is None else str(torch_dtype).replace("torch.", ""),
        "chat": chat, "device_map": device_map, "max_memory": max_memory,
        "offload_folder": _plain(offload_folder), "model_kwargs": model_kwargs, "name": name}
    label = name or (f"{label} + {adapter_label(adapter)}" if adapter is not None else label)
    if not weights:
        model.register_forward_pre_hook(_refuse_to_run(label))
    return LM(
        model=model,
        tokenizer=tokenizer,
        chat=bool(chat),
        name=label,
        source=str(source) if isinstance(source, (str, os.PathLike)) else label,
        adapter=None if adapter is None else str(adapter),
        adapter_enabled=None if adapter is None else True,
        adapter_paths=_adapter_paths(adapter),
        recipe=recipe,
        has_weights=weights,
    )


def _refuse_to_run(label: str):
    def hook(module, args):
        raise weights_not_loaded(label)
    return hook


def _plain(value):
    """Paths and devices as strings, so that a recipe pickles and reads the same anywhere."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return None if value is None else str(value) if isinstance(value, (os.PathLike, torch.device)) else value


def adapter_label(adapter) -> str:
    """An adapter argument as a reader's label: a path as it is, several named adapters as
    ``adapters beijing, json-only`` (never a Python dict's repr)."""
    if isinstance(adapter, dict):
        return "adapters " + ", ".join(str(k) for k in adapter)
    return str(adapter)


def load_pair(
    base_source,
    tuned_source=None,
    *,
    adapter: str | os.PathLike | dict | None = None,
    **kwargs,
) -> tuple[LM, LM]:
    """Load a (base, tuned) pair.

    ``load_pair(src, adapter=PATH)``: one set of weights; ``tuned`` runs with the adapter,
    ``base`` with it disabled (no second copy in memory).
    ``load_pair(base_src, tuned_src)``: two full checkpoints.

    Warns (:class:`IdenticalModelsWarning`) when the tuned model's logits equal the base's on
    a short text: an adapter that never applied gives false "never_had" verdicts.
    """
    if (tuned_source is None) == (adapter is None):
        raise ValueError("give exactly one of tuned_source or adapter=")
    if tuned_source is not None:
        base, tuned = load(base_source, **kwargs), load(tuned_source, **kwargs)
        if tuned.has_weights:
            warn_if_same(base, tuned, "load_pair")
        return base, tuned
    tuned = load(base_source, adapter=adapter, **kwargs)
    base = LM(
        model=tuned.model,
        tokenizer=tuned.tokenizer,
        chat=tuned.chat,
        name=f"{tuned.source} (base)",
        source=tuned.source,
        adapter=tuned.adapter,
        adapter_enabled=False,
        adapter_paths=tuned.adapter_paths,
        recipe=tuned.recipe,
        has_weights=tuned.has_weights,
        _text_cache=tuned._text_cache,
        _aux=tuned._aux,
    )
    if tuned.has_weights:
        warn_if_same(base, tuned, "load_pair")
    return base, tuned
