"""Command line: ``probe demo``, ``probe diagnose``, ``probe report``, ``probe shift``,
``probe training-log``.

The demo pair is cached in ``$PROBE_CACHE`` (default ``~/.cache/probe``).

Built on argparse; ``probe --help`` and ``probe COMMAND --help`` document every option. Each
command is one module here with ``add_parser(sub)``; what they share is in ``common``.
"""

from __future__ import annotations

import argparse
import sys

from . import attribute, basics, data_loss, demo, diagnose, evals, report, shift, training_log
from .common import InputError

COMMANDS = (demo, diagnose, report, shift, basics, data_loss, attribute, training_log, evals)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Why does a fine-tuned LM get this case wrong? Per-token probabilities, "
        "forced prefixes, base-vs-tuned diagnosis, and saved bad-case reports.",
        epilog="Exit status: 0 when every case was diagnosed (whatever the verdicts, unless a gate "
        "says otherwise), 1 on an input error (a missing file, a model that cannot load, a bad case "
        "line), 2 on a usage error, 3 when a gate fails (probe diagnose --fail-on).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # a lone surrogate (a tag from argv, a case's text) prints escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return args.func(args)
    except InputError as err:
        print(f"probe {args.command}: {err}", file=sys.stderr)
        return 1
