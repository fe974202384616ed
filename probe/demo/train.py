"""``python -m probe.demo.train``: train the demo LoRA adapters (then ``python -m probe.demo.evaluate``
shows their answers)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from .model import ensure_base
from .text import training_line
from .training import ADAPTERS, adapter_dir, train_adapter


def _emit(lines) -> None:
    for line in lines:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the demo LoRA adapters.")
    parser.add_argument("--adapter", choices=[*ADAPTERS, "all"], default="all")
    parser.add_argument("--out", type=Path, help="output folder (one adapter only); "
                        "default $PROBE_CACHE/adapters/<name>")
    parser.add_argument("--cache-dir", default=None)
    for f in ("epochs", "rank", "alpha", "batch_size", "seed", "warmup_steps"):
        parser.add_argument(f"--{f.replace('_', '-')}", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--targets", help="comma-separated module names, e.g. q_proj,v_proj")
    parser.add_argument("--layers", help="layers to adapt: 'all' or FIRST-LAST, e.g. 15-29")
    args = parser.parse_args(argv)

    names = list(ADAPTERS) if args.adapter == "all" else [args.adapter]
    if args.out and len(names) > 1:
        parser.error("--out needs a single --adapter")
    base_dir = ensure_base(args.cache_dir)
    for name in names:
        data_path, defaults = ADAPTERS[name]
        fields = asdict(defaults)
        for key in ("epochs", "rank", "alpha", "batch_size", "seed", "warmup_steps", "lr"):
            if getattr(args, key) is not None:
                fields[key] = getattr(args, key)
        if args.alpha is None and args.rank is not None:
            fields["alpha"] = 2 * args.rank
        if args.targets:
            fields["target_modules"] = tuple(args.targets.split(","))
        if args.layers:
            first, _, last = args.layers.partition("-")
            fields["layers"] = None if args.layers == "all" else tuple(range(int(first), int(last or first) + 1))
        out = args.out or adapter_dir(name, args.cache_dir)
        log = train_adapter(base_dir, data_path, out, **fields)
        _emit([training_line(name, out, log)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
