"""``python -m probe.demo.base``: build (once) and print the demo base model folder."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from .model import BaseModelUnavailable, ensure_base


def _emit(lines) -> None:
    for line in lines:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
