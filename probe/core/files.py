"""Safe file writes: nothing a user saved is ever half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path, text: str, *, errors: str = "strict") -> Path:
    """Write ``text`` to ``path`` via a temp file in the same folder, fsync, then rename.

    ``errors``: the UTF-8 encoder's (a page of model text passes ``"backslashreplace"``, so a
    lone surrogate is written as its escape instead of failing the write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
