"""``python -m probe.demo.make_data``: rewrite the demo's SFT datasets (probe/demo/data/*.jsonl)."""

from __future__ import annotations

import argparse
import sys

from .sft_data import build
from .text import data_lines


def _emit(lines) -> None:
    for line in lines:
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Rewrite the demo's SFT datasets.").parse_args(argv)
    _emit(data_lines(build()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
