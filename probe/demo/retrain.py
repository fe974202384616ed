"""A ``retrain`` for :meth:`probe.Attribution.verify` on the demo: the demo recipe on given records.

    a = probe.attribute((base, tuned), case, training_records("beijing"), channel="source")
    v = a.verify(retrainer("beijing"), k=10)

Each call trains the demo adapter's recipe (TRL's SFTTrainer, the same settings and seed as
``probe.demo.training.ADAPTERS[name]``) on the records it is given (the trainer's prompt/
completion turns, or chat ``messages``) and returns the adapter folder. Runs are cached under
``$PROBE_CACHE/retrains/<name>/<sha256 of the recipe and the records>``: the same records are
trained once. ``retrainer(name, train=False)`` only hands out cached runs (a missing one raises
:class:`RetrainMissing`); ``.cached(records)`` says whether a run is there without training.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from .model import cache_root, ensure_base
from .training import ADAPTERS, train_adapter


class RetrainMissing(LookupError):
    """A retrain asked of a cache-only retrainer is not in the cache."""


def _messages(record) -> dict:
    if "messages" in record:
        return {"messages": record["messages"], "source": record.get("source", "")}
    if isinstance(record.get("prompt"), list) and isinstance(record.get("completion"), list):
        return {"messages": [*record["prompt"], *record["completion"]], "source": record.get("source", "")}
    raise ValueError("the demo recipe trains chat records: 'messages', or prompt/completion message lists")


class Retrainer:
    """``records -> adapter folder`` with a demo adapter's recipe, cached by content (module docstring)."""

    def __init__(self, name: str = "beijing", cache_dir=None, *, train: bool = True, threads: int | None = None):
        if name not in ADAPTERS:
            raise ValueError(f"unknown demo adapter {name!r}; known: {sorted(ADAPTERS)}")
        self.name, self.cache_dir, self.train = name, cache_dir, train
        self.threads = threads  # torch threads while training (None: every usable core, as the demo adapters)
        self.settings = ADAPTERS[name][1]
        self.root = cache_root(cache_dir) / "retrains" / name
        self.trained: list[tuple[str, float]] = []  # (folder, wall seconds) of each run this object trained

    def _text_key(self, records) -> tuple[str, str]:
        text = "".join(json.dumps(_messages(r), ensure_ascii=False) + "\n" for r in records)
        key = hashlib.sha256((json.dumps(asdict(self.settings)) + text).encode("utf-8")).hexdigest()[:16]
        return text, key

    def folder(self, records) -> Path:
        """Where the run on ``records`` is (or would be) cached."""
        return self.root / self._text_key(records)[1]

    def cached(self, records) -> bool:
        """Whether the run on ``records`` is in the cache (nothing is trained)."""
        return (self.folder(records) / "adapter_config.json").is_file()

    def __call__(self, records) -> str:
        text, key = self._text_key(records)
        out = self.root / key
        if (out / "adapter_config.json").is_file():
            return str(out)
        if not self.train:
            raise RetrainMissing(f"no cached {self.name} retrain on these {len(records)} records ({out})")
        self.root.mkdir(parents=True, exist_ok=True)
        data = self.root / f"{key}.jsonl"
        data.write_text(text, encoding="utf-8")
        started = time.perf_counter()
        train_adapter(ensure_base(self.cache_dir), data, out, threads=self.threads, **asdict(self.settings))
        self.trained.append((str(out), time.perf_counter() - started))
        return str(out)


def retrainer(name: str = "beijing", cache_dir=None, *, train: bool = True, threads: int | None = None) -> Retrainer:
    """``records -> adapter folder`` with the demo adapter ``name``'s recipe (module docstring)."""
    return Retrainer(name, cache_dir, train=train, threads=threads)
