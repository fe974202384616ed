"""``probe shift``: what fine-tuning changed over a prompt set, as a case file (JSON) + an HTML report.

    probe shift --demo --use-adapter beijing --out shift.json --report shift.html
    probe shift --base SRC --adapter runs/lora --prompts prompts.txt --out shift.json

Prompts: a text file (one prompt a line) or a JSONL case file (``probe diagnose``'s format;
with checks the regression table by tag is added, ``--answers expected`` scores the cases'
expected answers instead of the tuned model's greedy ones). As a CI gate, ``--fail-on-lost N``
exits with status 3 when a tag of the regression table loses more than N cases, and
``--junit FILE`` writes one JUnit testcase per tag.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cases.case import Case
from ..core.junit import write_junit
from .gates import GATE_FAILED, lost_rows
from .common import (InputError, add_engine, add_model_args, engine_from, load_models, quiet_third_parties,
                     say, write_report)


def read_prompts(path: str):
    """CaseSpecs from a .jsonl file, else one prompt per non-empty line."""
    from ..diagnosis.run import CaseError, read_cases  # lazy: torch loads here, not for --help
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"prompt file {path!r} does not exist")
    if p.suffix == ".jsonl":
        items = read_cases(p)
        bad = [e for e in items if isinstance(e, CaseError)]
        if bad:
            raise ValueError("; ".join(str(e) for e in bad[:5]))
        return items
    prompts = [line.rstrip("\n") for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"prompt file {path!r} has no prompts")
    return prompts


def cmd_shift(args) -> int:
    quiet_third_parties()
    engine = engine_from(args)  # an unreachable cluster fails here, before any model loads
    try:
        return _shift(args, engine)
    finally:
        if engine is not None:
            engine.close()


def _shift(args, engine) -> int:
    from ..demo.pair import SUITE, load_demo_pair  # lazy: torch loads here, not for --help
    from ..shifts.regression import regression  # lazy: torch loads here, not for --help
    from ..shifts.map import shift  # lazy: torch loads here, not for --help
    if args.demo:
        base, tuned = load_demo_pair()
        source = args.prompts or str(SUITE)
    else:
        if not args.base or not (args.tuned or args.adapter):
            raise InputError("give --base and --tuned or --adapter (or --demo)")
        if not args.prompts:
            raise InputError("give --prompts FILE (or --demo for the demo suite)")
        source = args.prompts
    try:
        prompts = read_prompts(source)
    except (OSError, ValueError) as err:
        raise InputError(str(err)) from None
    has_checks = not isinstance(prompts[0], str) and all(p.check is not None or p.expected for p in prompts)
    regress = has_checks and not args.no_regression  # runs here, not on an engine
    if (args.fail_on_lost is not None or args.junit) and not regress:
        raise InputError("--fail-on-lost and --junit gate the regression table: give a JSONL case file "
                         "whose cases all have 'expected' or 'check' (and not --no-regression)")
    if args.fail_on_lost is not None and args.fail_on_lost < 0:
        raise InputError(f"--fail-on-lost must be >= 0, got {args.fail_on_lost}")
    if not args.demo:  # with --ray and nothing to run here, the driver needs no weights
        base, tuned = load_models(args, weights=engine is None or regress)
    if args.use_adapter:
        try:
            tuned.use_adapter(args.use_adapter)
        except ValueError as err:
            raise InputError(str(err)) from None
    say(f"Shift over {len(prompts)} prompts of {source}: base {base.name} vs tuned {tuned.name}"
         + (f" (adapter {tuned.active_adapter})" if tuned.active_adapter else ""))
    try:
        s = shift(base, tuned, prompts, answers=args.answers, max_new_tokens=args.max_new_tokens,
                        marginal=args.marginal, min_gain=args.min_gain, min_prob=args.min_prob, engine=engine)
    except (TypeError, ValueError) as err:
        raise InputError(str(err)) from None
    say(str(s))
    results = {"shift": s}
    if regress:
        r = regression(base, tuned, prompts, max_new_tokens=args.max_new_tokens)
        say(str(r))
        results["regression"] = r
    case = Case.from_result(results, models={"base": base, "tuned": tuned}, title=f"shift: {Path(source).name}",
                            tags=("shift",))
    out = case.save(args.out)
    say(f"case file: {Path(out).resolve()}  (probe.Case.load it; results 'shift'"
         + (", 'regression'" if "regression" in results else "") + ")")
    if args.report:
        write_report(args.report, title=f"probe shift: {Path(source).name}", sections=results.values(),
                     intro=f"base {base.name} vs tuned {tuned.name}; prompts {source}")
    if not regress:
        return 0
    rows = lost_rows(results["regression"], args.fail_on_lost, f"probe.shift.{Path(source).stem}")
    if args.junit:
        say(f"junit: {write_junit(args.junit, f'probe shift: {Path(source).name}', rows).resolve()}")
    failed = [message for _, _, message in rows if message is not None]
    if failed:
        print(f"probe shift: {len(failed)} tag(s) lost more than {args.fail_on_lost} case(s):", file=sys.stderr)
        for message in failed:
            print(f"  {message}", file=sys.stderr)
        return GATE_FAILED
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "shift", help="what fine-tuning changed over a prompt set: shifted tokens, KL, promoted tokens",
        description="Score the tuned model's answers (greedy, or the cases' expected answers) under "
        "both models: base rank and class of every answer token, KL(tuned || base) by position, the "
        "tokens tuned promotes and demotes most often; with a case file that has checks, also the "
        "regression table by tag. Writes a case file (JSON) and optionally an offline HTML report.")
    p.add_argument("--demo", action="store_true", help="the demo pair and (default) its 64-case suite")
    add_model_args(p)
    p.add_argument("--prompts", metavar="FILE", help="one prompt a line, or a JSONL case file")
    p.add_argument("--answers", choices=("greedy", "expected"), default="greedy",
                   help="score the tuned model's greedy answers (default) or the cases' expected answers")
    p.add_argument("--out", default="shift.json", help="the case file to write (default shift.json)")
    p.add_argument("--report", metavar="FILE", help="also write an offline HTML report")
    p.add_argument("--max-new-tokens", type=int, default=48, help="greedy answer length (default 48)")
    p.add_argument("--marginal", type=int, default=3, help="base ranks 2..N count as marginal (default 3)")
    p.add_argument("--min-gain", type=float, default=1.0, help="nats a promoted token gains at least (default 1)")
    p.add_argument("--min-prob", type=float, default=0.01, help="tuned probability a promoted token has at least")
    p.add_argument("--no-regression", action="store_true", help="skip the regression table")
    p.add_argument("--fail-on-lost", type=int, default=None, metavar="N",
                   help="a CI gate: exit with status 3 when a tag of the regression table (or 'all') "
                        "loses more than N cases")
    p.add_argument("--junit", metavar="FILE", default=None,
                   help="write JUnit XML: one testcase per tag, failed where --fail-on-lost fails it")
    add_engine(p)
    p.set_defaults(func=cmd_shift)
