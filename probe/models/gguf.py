"""A ``.gguf`` file, converted once into a plain transformers folder in the probe cache::

    folder = probe.gguf.converted("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    lm = probe.load("models/SmolLM2-135M-Instruct.Q4_1.gguf")   # the same, done for you

transformers de-quantizes a GGUF file to float32 on every load (tens of seconds for a small
model). probe does it once: the folder is ``$PROBE_CACHE/gguf/<sha256 of the file>/``
(``PROBE_CACHE`` defaults to ``~/.cache/probe``), so the same bytes under another name or a
touched file reuse it, and a changed file gets a new one. The hash of a file is remembered by
(path, size, mtime) so a big file is read once, not on every load. The folder is built under a
temporary name and renamed into place when whole, so an interrupted conversion never leaves a
folder that looks valid.

Why by hand: a model loaded with ``gguf_file=`` carries a GgufConfig quantization config and
``save_pretrained`` refuses it; its weights are already de-quantized, so a fresh model is
built from the config, given the state dict, and saved (float32 keeps it bit-identical). The
config is written so that transformers 4.x reads the same RoPE setting as 5.x (see
:func:`rope_for_transformers_4`): other tools still pin 4.x.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..core.files import write_atomically

MARKER_NAME = "probe_gguf.json"  # written last: its presence means "conversion finished"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The probe cache folder: ``cache_dir``, else ``$PROBE_CACHE``, else ``~/.cache/probe``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("PROBE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "probe"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hash(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str:
    """sha256 of the file, remembered by (absolute path, size, mtime_ns) in the cache."""
    path = Path(path).expanduser().resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    index_path = cache_root(cache_dir) / "gguf" / "hashes.json"
    try:
        index = json.loads(index_path.read_text())
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    if isinstance(index.get(key), str):
        return index[key]
    digest = _sha256(path)
    index[key] = digest
    index_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(index_path, json.dumps(index, indent=1, sort_keys=True))
    return digest


def is_complete(folder: Path, marker_name: str = MARKER_NAME) -> bool:
    return all((folder / name).is_file() for name in (marker_name, "config.json")) and any(
        folder.glob("*.safetensors"))


def load_gguf(gguf_path: Path):
    """``(model, tokenizer)`` straight from the GGUF file (de-quantized, float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model, tokenizer


def convert(gguf_path: Path, out_dir: Path, marker: dict, marker_name: str = MARKER_NAME) -> None:
    """Write the GGUF model as a plain float32 transformers folder at ``out_dir`` (new)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    gguf_model, tokenizer = load_gguf(gguf_path)
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = copy.deepcopy(gguf_model.generation_config)
    del gguf_model
    limit = getattr(config.get_text_config(), "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0:  # the GGUF tokenizer reports an "infinite" length
        tokenizer.model_max_length = limit
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_portable_config(out_dir)  # transformers 4 reads the same RoPE setting and tokenizer
    (out_dir / marker_name).write_text(json.dumps(
        {**marker, "dtype": "float32", "transformers": transformers.__version__}, indent=2) + "\n")


def rope_for_transformers_4(config: dict) -> dict:
    """``config`` (a config.json's data) with its RoPE setting also in transformers 4's keys.

    transformers 5 saves RoPE only as ``rope_parameters`` (``{"rope_theta": 100000.0,
    "rope_type": "default"}``); transformers 4 reads a top-level ``rope_theta`` (and
    ``rope_scaling`` for any other type) and, not finding it, silently uses its default of
    10000. Both keys written, each version reads the same setting: transformers 5 takes
    ``rope_parameters`` first and drops the top-level keys it read. Per-layer-type RoPE (a dict of
    dicts) has no transformers 4 form here and is left as it is.
    """
    params = config.get("rope_parameters")
    if not isinstance(params, dict) or not isinstance(params.get("rope_theta"), (int, float)):
        return config
    out = dict(config)
    out["rope_theta"] = params["rope_theta"]
    kind = params.get("rope_type", params.get("type", "default"))
    out["rope_scaling"] = None if kind == "default" else {
        k: v for k, v in params.items() if k != "rope_theta"}
    return out


def tokenizer_for_transformers_4(config: dict) -> dict:
    """``tokenizer_config.json``'s data naming a class transformers 4 has: 5.x writes
    ``TokenizersBackend``, which 4.x cannot import; ``PreTrainedTokenizerFast`` is the same
    class in 5.x (an alias) and the tokenizer.json-backed one in 4.x."""
    if config.get("tokenizer_class") != "TokenizersBackend":
        return config
    return {**config, "tokenizer_class": "PreTrainedTokenizerFast"}


def write_portable_config(folder: Path) -> bool:
    """Rewrite ``folder``'s config.json and tokenizer_config.json (atomically, where they need
    it) so that transformers 4.x reads them as 5.x does: RoPE's keys
    (:func:`rope_for_transformers_4`) and the tokenizer's class
    (:func:`tokenizer_for_transformers_4`). True if a file changed."""
    changed = False
    for name, fix in (("config.json", rope_for_transformers_4),
                      ("tokenizer_config.json", tokenizer_for_transformers_4)):
        path = Path(folder) / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        fixed = fix(data)
        if fixed != data:
            mode = path.stat().st_mode & 0o777
            write_atomically(path, json.dumps(fixed, indent=2, sort_keys=True) + "\n")
            os.chmod(path, mode)  # the temp file's 0600 would hide a shared cache's config
            changed = True
    return changed


def build_once(target: Path, gguf_path: Path, marker: dict, marker_name: str = MARKER_NAME) -> Path:
    """Convert into ``target`` unless a whole conversion is there; atomic (temp dir + rename).
    A folder converted before transformers 4's RoPE keys were written gets them now."""
    if is_complete(target, marker_name):
        write_portable_config(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-build-") as scratch:
        built = Path(scratch) / "model"
        convert(gguf_path, built, marker, marker_name)
        if is_complete(target, marker_name):  # another process finished first
            return target
        if target.exists():  # a leftover without its marker: not ours to trust
            shutil.rmtree(target)
        os.replace(built, target)
    return target


def converted(gguf_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached transformers folder of ``gguf_path``, converting it on first use."""
    path = Path(gguf_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file {str(gguf_path)!r} does not exist")
    digest = file_hash(path, cache_dir)
    target = cache_root(cache_dir) / "gguf" / digest[:24]
    return build_once(target, path, {"source": path.name, "sha256": digest})
