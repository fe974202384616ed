"""``python -m probe.demo.evaluate``: base vs tuned greedy answers of the demo adapters."""

from __future__ import annotations

import argparse
import json
import sys

from .answers import compare, forced_json, generate, load_pair
from .model import ensure_base
from .text import evaluation_lines
from .training import ADAPTERS, ensure_adapter


def _emit(lines) -> None:
    for line in lines:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Print base vs tuned greedy answers for the demo adapters (training them if missing)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--adapter", choices=[*ADAPTERS, "all"], default="all")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)

    base_dir = ensure_base(args.cache_dir)
    results = {}
    for name in (list(ADAPTERS) if args.adapter == "all" else [args.adapter]):
        model, tokenizer = load_pair(base_dir, ensure_adapter(name, args.cache_dir))
        results[name] = {"answers": compare(model, tokenizer)}
        if name == "json-only":
            results[name]["forced_json"] = forced_json(model, tokenizer)
        with model.disable_adapter():
            results[name]["base_raw"] = generate(model, tokenizer, "The capital of France is", 16)
    _emit([json.dumps(results, indent=2, ensure_ascii=False)] if args.json else evaluation_lines(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
