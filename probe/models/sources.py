"""Where a model's weights and tokenizer come from: a local folder, a ``.gguf`` file (converted
once into the probe cache) or a hub name (the local hub cache first, then one short attempt to
reach the hub instead of its client's retry loop)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .gguf import converted


def _looks_like_path(source: str) -> bool:
    return (
        os.path.isabs(source)
        or source.startswith((".", "~"))
        or source.endswith(".gguf")
        or source.count("/") > 1
        or os.sep != "/" and os.sep in source
    )


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub can't be used right now (offline mode, host unreachable), or None.

    One short connection attempt instead of the hub client's retry loop.
    """
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host}:{port} cannot be reached: {err}"
    return None


def from_pretrained(source: str, dtype, device_map, model_kwargs: dict):
    """Load (model, tokenizer) from a folder, a .gguf file or a hub name.

    A .gguf file is converted once into the probe cache (:mod:`probe.models.gguf`) and loaded from
    there: no de-quantization on every load.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {}
    path = Path(os.path.expanduser(source))
    local = path.exists()
    if local:
        if path.is_file():
            if path.suffix != ".gguf":
                raise ValueError(f"{source!r} is a file but not a .gguf file; pass a model folder")
            where = str(converted(path))
        else:
            where = str(path)
    elif _looks_like_path(source):
        raise FileNotFoundError(f"model source {source!r} does not exist")
    else:
        where = source  # a hub name
    model_kwargs = dict(model_kwargs)
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    if device_map is not None:
        model_kwargs["device_map"] = device_map

    def attempt(**extra):
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs, **extra)
        return AutoModelForCausalLM.from_pretrained(where, **model_kwargs, **extra), tokenizer

    if local:
        return attempt()
    try:  # the local hub cache first: no network at all
        return attempt(local_files_only=True)
    except OSError:
        pass
    reason = _hub_unreachable()
    if reason is None:
        try:
            return attempt()
        except OSError as err:
            reason = f"{err.__class__.__name__}: {str(err).splitlines()[0]}"
    raise OSError(
        f"could not load model {source!r}: it is not a local folder or file, not in the local "
        f"hub cache, and the hub did not provide it ({reason}). Pass a local folder or .gguf "
        "file, or download the model where the hub is reachable."
    ) from None
