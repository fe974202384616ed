"""Safe file writes: nothing a user saved is ever half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it where the OS says it (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path, text: str, *, errors: str = "strict", mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync, then rename.

    ``errors``: the UTF-8 encoder's (a page of model text passes ``"backslashreplace"``, so a
    lone surrogate is written as its escape instead of failing the write). ``mode``: the file's
    permissions (default: as ``open`` would make it, 0o666 less the umask: 0644 under the
    usual 022; the temp file alone would be 0600, unreadable to others)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask() if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
