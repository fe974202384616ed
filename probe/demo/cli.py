"""The demo pair's maintainer commands (the library modules return data; this prints it).

    python -m probe.demo.make_data                   # rewrites probe/demo/data/*.jsonl
    python -m probe.demo.base                        # builds (once) and prints the base folder
    python -m probe.demo.train --adapter json-only   # or: beijing, all
    python -m probe.demo.evaluate [--json]           # base vs tuned greedy answers
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path


def data_lines(paths: dict[str, Path]) -> list[str]:
    """One line per dataset written: its adapter, path and example count."""
    out = []
    for name, path in paths.items():
        with open(path, encoding="utf-8") as f:
            out.append(f"{name}: {path} ({sum(1 for _ in f)} examples)")
    return out


def answer_lines(rows: list[dict], indent: str = "") -> list[str]:
    """``compare``'s rows as text: the question, then the base and the tuned answer."""
    pad = indent + "   "
    return [f"{indent}Q: {r['question']}\n{pad}base:  {r['base']!r}\n{pad}tuned: {r['tuned']!r}"
            for r in rows]


def evaluation_lines(results: dict) -> list[str]:
    """The evaluation of each adapter as text (``main_evaluate``'s results)."""
    out = []
    for name, res in results.items():
        out.append(f"== {name}")
        out += answer_lines(res["answers"])
        out += [f"forced {r['prefix']!r} valid={r['valid_json']} strict={r['valid_json_strict']}: "
                f"{r['question']} -> {r['answer']!r}" for r in res.get("forced_json", [])]
        out.append(f"base raw 'The capital of France is' -> {res['base_raw']!r}")
    return out


def training_line(name: str, out: Path, log: dict) -> str:
    """One adapter's training summary: where, size, time, loss first -> last 5."""
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    last = log["losses"][-5:]
    return (f"{name}: {out} ({size:.1f} MB) trained in {log['seconds']['train']:.0f} s "
            f"(total {log['seconds']['total']:.0f} s); loss {log['losses'][0]:.3f} -> "
            f"{sum(last) / len(last):.3f} (mean of last {len(last)})")


def _emit(lines) -> None:
    for line in lines:
        print(line, flush=True)


def main_make_data(argv: list[str] | None = None) -> int:
    from .make_data import build

    argparse.ArgumentParser(description="Rewrite the demo's SFT datasets.").parse_args(argv)
    _emit(data_lines(build()))
    return 0


def main_base(argv: list[str] | None = None) -> int:
    from .base import BaseModelUnavailable, ensure_base

    parser = argparse.ArgumentParser(description="Build (once) and print the demo base model folder.")
    parser.add_argument("--cache-dir", default=None, help="default: $PROBE_CACHE or ~/.cache/probe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    try:
        path = ensure_base(args.cache_dir)
    except BaseModelUnavailable as err:
        print(err, file=sys.stderr)
        return 1
    _emit([str(path)])
    print(f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


def main_train(argv: list[str] | None = None) -> int:
    from .base import ensure_base
    from .train import ADAPTERS, adapter_dir, train_adapter

    parser = argparse.ArgumentParser(description="Train the demo LoRA adapters.")
    parser.add_argument("--adapter", choices=[*ADAPTERS, "all"], default="all")
    parser.add_argument("--out", type=Path, help="output folder (one adapter only); "
                        "default $PROBE_CACHE/adapters/<name>")
    parser.add_argument("--cache-dir", default=None)
    for f in ("steps", "rank", "alpha", "batch_size", "seed", "warmup_steps"):
        parser.add_argument(f"--{f.replace('_', '-')}", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--targets", help="comma-separated module names, e.g. q_proj,v_proj")
    parser.add_argument("--layers", help="layers to adapt: 'all' or FIRST-LAST, e.g. 15-29")
    parser.add_argument("--eval", action="store_true", help="print greedy base/tuned answers afterwards")
    args = parser.parse_args(argv)

    names = list(ADAPTERS) if args.adapter == "all" else [args.adapter]
    if args.out and len(names) > 1:
        parser.error("--out needs a single --adapter")
    base_dir = ensure_base(args.cache_dir)
    for name in names:
        data_path, defaults = ADAPTERS[name]
        fields = asdict(defaults)
        for key in ("steps", "rank", "alpha", "batch_size", "seed", "warmup_steps", "lr"):
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
        if args.eval:
            from .evaluate import compare, load_pair

            model, tokenizer = load_pair(base_dir, out)
            _emit(answer_lines(compare(model, tokenizer), indent="  "))
    return 0


def main_evaluate(argv: list[str] | None = None) -> int:
    """Print base vs tuned greedy answers for the demo adapters (training them if missing)."""
    from .base import ensure_base
    from .evaluate import compare, forced_json, generate, load_pair
    from .train import ADAPTERS, ensure_adapter

    parser = argparse.ArgumentParser(description=main_evaluate.__doc__)
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


COMMANDS = {"make_data": main_make_data, "base": main_base, "train": main_train, "evaluate": main_evaluate}


def run(command: str) -> None:
    """``python -m probe.demo.<command>``: run it on ``sys.argv`` and exit with its code."""
    sys.exit(COMMANDS[command](sys.argv[1:]))
