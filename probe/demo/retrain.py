"""A ``retrain`` for :meth:`probe.Attribution.verify` on the demo: the demo recipe on given records.

    a = probe.attribute((base, tuned), case, training_records("beijing"), channel="source")
    v = a.verify(retrainer("beijing"), k=10)

Each call trains the demo adapter's recipe (TRL's SFTTrainer, the same settings and seed as
``probe.demo.training.ADAPTERS[name]``) on the records it is given (the trainer's prompt/
completion turns, or chat ``messages``) and returns the adapter folder. Runs are cached under
``$PROBE_CACHE/retrains/<name>/<sha256 of the records>``: the same records are trained once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from .model import cache_root, ensure_base
from .training import ADAPTERS, train_adapter


def _messages(record) -> dict:
    if "messages" in record:
        return {"messages": record["messages"], "source": record.get("source", "")}
    if isinstance(record.get("prompt"), list) and isinstance(record.get("completion"), list):
        return {"messages": [*record["prompt"], *record["completion"]], "source": record.get("source", "")}
    raise ValueError("the demo recipe trains chat records: 'messages', or prompt/completion message lists")


def retrainer(name: str = "beijing", cache_dir=None):
    """``records -> adapter folder`` with the demo adapter ``name``'s recipe (module docstring)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown demo adapter {name!r}; known: {sorted(ADAPTERS)}")
    settings = ADAPTERS[name][1]
    root = cache_root(cache_dir) / "retrains" / name

    def retrain(records) -> str:
        text = "".join(json.dumps(_messages(r), ensure_ascii=False) + "\n" for r in records)
        key = hashlib.sha256((json.dumps(asdict(settings)) + text).encode("utf-8")).hexdigest()[:16]
        out = root / key
        if (out / "adapter_config.json").is_file():
            return str(out)
        root.mkdir(parents=True, exist_ok=True)
        data = root / f"{key}.jsonl"
        data.write_text(text, encoding="utf-8")
        train_adapter(ensure_base(cache_dir), data, out, **asdict(settings))
        return str(out)

    return retrain
