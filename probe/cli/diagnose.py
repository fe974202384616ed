"""``probe diagnose``: a JSONL case file on a base/tuned pair, into a casebook (and a report).

As a CI gate: ``--fail-on lost,never_had`` exits with status 3 when any case gets one of those
verdicts (or labels), and ``--junit probe.xml`` writes one JUnit testcase per case, failed where
the gate fails it (the verdict and its evidence as the message; a case that could not run fails
with its error).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cases.casebook import Casebook
from ..core.junit import write_junit
from ..diagnosis.failure import FailedCase
from ..render.text import verdict_table
from .gates import GATE_FAILED, GATE_WORDS, diagnosis_rows, gate_message, parse_fail_on
from .common import (InputError, add_engine, add_model_args, add_sampling, cases_from, engine_from,
                     load_models, quiet_third_parties, sampling, say, write_report)


def cmd_diagnose(args) -> int:
    quiet_third_parties()
    if not Path(args.cases).is_file():
        raise InputError(f"case file {args.cases!r} does not exist")
    fail_on = parse_fail_on(args.fail_on)
    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise InputError(f"--batch-tokens must be >= 1, got {args.batch_tokens}")
    try:
        book = None if args.book is None else Casebook(args.book)
    except OSError as err:
        raise InputError(f"--book: {err}") from None
    engine = engine_from(args)  # an unreachable cluster fails here, before any model loads
    try:
        return _diagnose(args, book, engine, fail_on)
    finally:
        if engine is not None:
            engine.close()


def _diagnose(args, book, engine, fail_on: frozenset[str] = frozenset()) -> int:
    from ..diagnosis.run import diagnose_many, read_cases  # lazy: torch loads here, not for --help
    base, tuned = load_models(args, weights=engine is None)  # with --ray the workers hold them
    say(f"Diagnosing {args.cases}: base {base.name} vs tuned {tuned.name}")
    specs = read_cases(args.cases)
    batching = {} if args.batch_tokens is None else {"batch_tokens": args.batch_tokens}
    results = diagnose_many(base, tuned, specs, progress=not args.quiet,
                                  max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                                  engine=engine, **batching, **sampling(args))
    say(verdict_table(results))
    cases, errors = cases_from(results, specs, base, tuned, note=args.note, tags=tuple(args.tag))
    if book is not None:
        for case in cases:
            book.add(case)
        say(f"\nadded {len(cases)} case(s) to {book.folder.resolve()} (now {len(book)})")
    elif not args.report:
        say("\n(not saved: --book FOLDER keeps the cases, --report FILE writes a page of them)")
    if args.report:
        write_report(args.report, cases, errors, f"probe diagnose: {Path(args.cases).name}")
    if args.junit:
        rows = diagnosis_rows(results, fail_on, f"probe.diagnose.{Path(args.cases).stem}")
        say(f"junit: {write_junit(args.junit, f'probe diagnose: {Path(args.cases).name}', rows).resolve()}")
    if errors:
        print(f"probe diagnose: {len(errors)} case(s) could not be diagnosed:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    messages = [(r.case_id, gate_message(r, fail_on)) for r in results if not isinstance(r, FailedCase)]
    failed = [(case_id, message) for case_id, message in messages if message is not None]
    if failed:
        print(f"probe diagnose: {len(failed)} case(s) failed --fail-on {args.fail_on}:", file=sys.stderr)
        for case_id, message in failed:
            print(f"  {case_id}: {message}", file=sys.stderr)
        return GATE_FAILED
    return 0


def add_parser(sub) -> None:
    diag = sub.add_parser(
        "diagnose", help="diagnose a JSONL case file on a base/tuned pair into a casebook",
        description="Run every case of CASES (JSONL: prompt, expected or check, force, base_prompt, "
        "tags, adapter) on the base and tuned models, print the verdict table, and optionally add "
        "the cases to a casebook (--book) and write an HTML report of this run (--report).")
    add_model_args(diag, required=True, use_adapter=False,
                   adapter_help="a PEFT/LoRA adapter on the base; repeat NAME=PATH for several "
                   "(cases pick one with their 'adapter' field)")
    diag.add_argument("--cases", required=True, metavar="FILE", help="the JSONL case file")
    diag.add_argument("--book", metavar="FOLDER", help="also add the cases to this casebook folder (made if missing)")
    diag.add_argument("--report", metavar="FILE", help="write an offline HTML report of these cases")
    diag.add_argument("--max-new-tokens", type=int, default=48, help="length of each run (default 48)")
    diag.add_argument("--top-k", type=int, default=5, help="alternatives kept per token (default 5)")
    diag.add_argument("--batch-tokens", type=int, default=None, metavar="N",
                      help="cases share generation batches of at most N tokens, rows x longest row "
                           "(default: probe.diagnosis.batch.BATCH_TOKENS, 16384); lower it if the model runs "
                           "out of memory, 1: one case at a time")
    diag.add_argument("--tag", action="append", default=[], help="add this tag to every case (repeatable)")
    diag.add_argument("--note", default="", help="a note saved with every case")
    diag.add_argument("--quiet", action="store_true", help="no progress bar")
    diag.add_argument("--fail-on", metavar="WORDS", default=None,
                      help="a CI gate: exit with status 3 when any case's verdict or label is one of "
                           f"these (comma-separated: {', '.join(GATE_WORDS)}), e.g. lost,never_had")
    diag.add_argument("--junit", metavar="FILE", default=None,
                      help="write JUnit XML: one testcase per case, failed where --fail-on fails it "
                           "or the case could not run")
    add_sampling(diag, 0)
    add_engine(diag)
    diag.set_defaults(func=cmd_diagnose)
