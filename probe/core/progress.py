"""Progress bars for long loops (tqdm when asked for and available, else nothing)."""

from __future__ import annotations

import contextlib


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def progress(total: int, enabled: bool, desc: str, unit: str = "it"):
    """``with progress(n, True, "score", "pair") as bar: ... bar.update(k)``."""
    if not enabled:
        yield _Silent()
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        yield _Silent()
        return
    bar = tqdm(total=total, desc=desc, unit=unit)
    try:
        yield bar
    finally:
        bar.close()
