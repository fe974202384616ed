"""``probe basics``: what else broke? The bundled basics pack on a pair, by tag.

    probe basics --base SRC --adapter runs/lora            # ~380 cases, both passes
    probe basics --demo --use-adapter beijing --tags capitals,arithmetic
    probe basics --base SRC --tuned OTHER --no-generate     # the log-prob pass alone (cheapest)

Prints which tags lost what (lost / gained / kept / never from both models' greedy answers and
each case's check; the mean drop in log P(expected)), writes a case file (JSON) and optionally
an offline HTML report.
"""

from __future__ import annotations

from pathlib import Path

from .common import InputError, add_model_args, load_models, quiet_third_parties, say, write_report


def cmd_basics(args) -> int:
    # lazy: torch loads here, not for `probe --help`
    from ..cases.case import Case
    from ..demo.pair import load_demo_pair
    from ..packs.basics import basics

    quiet_third_parties()
    if args.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    if args.demo:
        base, tuned = load_demo_pair()
    else:
        if not args.base or not (args.tuned or args.adapter):
            raise InputError("give --base and --tuned or --adapter (or --demo)")
        base, tuned = load_models(args)
    if args.use_adapter:
        try:
            tuned.use_adapter(args.use_adapter)
        except ValueError as err:
            raise InputError(str(err)) from None
    say(f"Basics pack on base {base.name} vs tuned {tuned.name}"
        + (f" (adapter {tuned.active_adapter})" if tuned.active_adapter else "")
        + (f", tags {', '.join(tags)}" if tags else ""))
    try:
        b = basics(base, tuned, tags=tags, generate=not args.no_generate, max_new_tokens=args.max_new_tokens,
                   min_drop=args.min_drop)
    except (TypeError, ValueError) as err:
        raise InputError(str(err)) from None
    say(str(b))
    case = Case.from_result(b, models={"base": base, "tuned": tuned}, title="basics pack", tags=("basics",))
    out = case.save(args.out)
    say(f"case file: {Path(out).resolve()}  (probe.Case.load it; result 'basics')")
    if args.report:
        write_report(args.report, title="probe basics", sections=[b],
                     intro=f"base {base.name} vs tuned {tuned.name}; the basics pack {b.pack}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "basics", help="what else broke: the bundled basics pack (capitals, arithmetic, units, ...) by tag",
        description="Run the bundled basics pack (general-knowledge and skill cases, each with its expected "
        "answer, check and tags) through base and tuned: the expected answers scored by log-prob under "
        "both models, then both models' greedy answers checked. Prints lost / gained / kept / never and "
        "the log P(expected) drop per tag; writes a case file (JSON) and optionally an HTML report.")
    p.add_argument("--demo", action="store_true", help="the demo pair (use --use-adapter beijing)")
    add_model_args(p)
    p.add_argument("--tags", metavar="T1,T2", help="only the cases with one of these tags")
    p.add_argument("--no-generate", action="store_true",
                   help="the log-prob pass alone: no greedy answers, so no lost/gained counts")
    p.add_argument("--max-new-tokens", type=int, default=32, help="greedy answer length (default 32)")
    p.add_argument("--min-drop", type=float, default=1.0, help="nats of log P(expected) lost to count as dropped")
    p.add_argument("--out", default="basics.json", help="the case file to write (default basics.json)")
    p.add_argument("--report", metavar="FILE", help="also write an offline HTML report")
    p.set_defaults(func=cmd_basics)
