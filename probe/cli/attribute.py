"""``probe attribute``: which training examples taught each case its wrong answer.

    probe attribute cases.jsonl --data train.jsonl --base SRC --adapter runs/lora --channel source
    probe attribute cases.jsonl --data train.jsonl --base SRC --adapter epoch-1=A1 --adapter epoch-2=A2

Every loaded adapter is a TracIn checkpoint (weighted by its trainer_state.json learning rate).
The cases share the per-example gradients. Each attribution is printed and saved as a case
in ``--book`` (its id: the case's), with an optional offline HTML report.
"""

from __future__ import annotations

from pathlib import Path

from ..core.vocab import AttributionMethod, AttributionQuery, words
from ..train.masks import MASKS
from .common import InputError, add_model_args, load_models, quiet_third_parties, say, write_report


def cmd_attribute(args) -> int:
    # lazy: torch loads here, not for `probe --help`
    from ..attribution.attribute import attribute
    from ..cases.case import Case, check_id
    from ..cases.casebook import Casebook
    from ..diagnosis.failure import FailedCase
    from ..diagnosis.run import read_cases

    quiet_third_parties()
    if not args.base or not (args.tuned or args.adapter):
        raise InputError("give --base and --tuned or --adapter")
    if not Path(args.data).is_file():
        raise InputError(f"dataset file {args.data!r} does not exist")
    try:
        specs = read_cases(args.cases)
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from None
    bad = [s for s in specs if isinstance(s, FailedCase)]
    if bad:
        raise InputError(f"{args.cases}: line {bad[0].line}: {bad[0].message}")
    missing = [s.id for s in specs if not s.expected]
    if missing:
        raise InputError(f"cases {missing[:5]} have no expected answer: nothing to attribute")
    base, tuned = load_models(args)
    methods = args.method or list(words(AttributionMethod))
    say(f"Attributing {len(specs)} case(s) to the {args.data} examples: tuned {tuned.name}")
    try:
        results = attribute((base, tuned), list(specs), args.data, methods=methods, query=args.query,
                            mask=args.mask, channel=args.channel, limit=args.limit, keep=args.keep, progress=True)
    except (TypeError, ValueError, OSError, ImportError) as err:
        raise InputError(str(err)) from None
    book = Casebook(args.book)
    for spec, a in zip(specs, results):
        say(str(a))
        case = Case.from_result(a, models={"base": base, "tuned": tuned}, id=check_id(f"attribution-{spec.id}"),
                                tags=("attribution", *spec.tags))
        book.add(case, overwrite=True)
    say(f"case book: {Path(args.book).resolve()} ({len(results)} attribution case(s))")
    if args.report:
        write_report(args.report, title=f"probe attribute: {Path(args.cases).name}", sections=results,
                     intro=f"tuned {tuned.name}; data {args.data}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "attribute", help="which training examples taught each case its wrong answer (TracIn, hidden states, BM25)",
        description="Score every training example (with the trainer's loss mask) for how much it pushed "
        "each case toward its wrong answer: TracIn gradients on the adapter over every loaded adapter "
        "(checkpoint), hidden-state cosine and BM25; top examples, channel shares, method agreement.")
    p.add_argument("cases", help="the cases: JSON Lines with prompt and expected (as probe diagnose reads)")
    p.add_argument("--data", required=True, help="the training set: JSON Lines (.jsonl, .gz too)")
    add_model_args(p)
    p.add_argument("--method", action="append", choices=words(AttributionMethod),
                   help="a method to run (repeatable; default: all three)")
    p.add_argument("--query", choices=words(AttributionQuery), default="contrast",
                   help="contrast: log P(wrong) - log P(expected) at the first divergent token (default); "
                   "loss: the expected answer's loss")
    p.add_argument("--channel", metavar="FIELD", help="the record field that names the channel (e.g. source)")
    p.add_argument("--mask", choices=MASKS, default=None, help="which tokens are in the loss (default: the trainer's)")
    p.add_argument("--limit", type=int, default=None, help="score the first N examples only")
    p.add_argument("--keep", type=int, default=10, help="top examples per method kept with their tokens (default 10)")
    p.add_argument("--book", default="attribution-cases", help="the case book to write (default attribution-cases/)")
    p.add_argument("--report", metavar="FILE", help="also write an offline HTML report")
    p.set_defaults(func=cmd_attribute)
