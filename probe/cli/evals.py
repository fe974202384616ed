"""``probe eval-flips BASE_RUN TUNED_RUN`` and ``probe eval``: which benchmark samples fine-tuning
flipped, and why.

    probe eval-flips runs/base runs/tuned                         # from lm_eval ... --log_samples
    probe eval-flips runs/base runs/tuned --base SRC --adapter LORA --casebook flips/ --report flips.html
    probe eval --base SRC --adapter LORA --tasks hellaswag,gsm8k --output-path runs/ --limit 200
"""

from __future__ import annotations

from pathlib import Path

from ..cases.case import Case
from ..cases.casebook import Casebook
from ..evals.logs import EvalLogError
from .common import InputError, load_models, quiet_third_parties, say, write_report


def _finish(flips, args, base=None, tuned=None) -> int:
    if base is not None:
        say(f"Diagnosing {len(flips.flips)} flipped samples with {base.name} / {tuned.name}")
        try:
            flips = flips.diagnose(base, tuned, tolerance=args.tolerance)
        except (TypeError, ValueError) as err:
            raise InputError(str(err)) from None
    say(str(flips))
    models = {"base": base, "tuned": tuned} if base is not None else None
    cases = [Case.from_result(f, models=models, tags=("eval",)) for f in flips.flips]
    if args.casebook:
        book = Casebook(args.casebook)
        for c in cases:
            book.add(c)
        say(f"casebook: {Path(args.casebook).resolve()} ({len(cases)} flipped samples)")
    if args.out:
        Case.from_result(flips, models=models, title="eval flips", tags=("eval",)).save(args.out)
        say(f"case file: {Path(args.out).resolve()}  (probe.Case.load it; result 'eval_flips')")
    if args.report:
        write_report(args.report, cases, title="probe eval flips", sections=[flips.regression(), flips],
                     intro=f"base {flips.runs.get('base')} vs tuned {flips.runs.get('tuned')}")
    return 0


def _models(args):
    if not args.base:
        return None, None
    if not (args.tuned or args.adapter):
        raise InputError("--base needs --tuned or --adapter")
    return load_models(args)


def cmd_eval_flips(args) -> int:
    from ..evals.flips import eval_flips  # lazy: torch loads here, not for --help
    quiet_third_parties()
    try:
        flips = eval_flips(args.base_run, args.tuned_run, metric=args.metric)
    except (EvalLogError, OSError) as err:
        raise InputError(str(err)) from None
    return _finish(flips, args, *_models(args))


def cmd_eval(args) -> int:
    from ..evals.flips import eval_flips  # lazy: torch loads here, not for --help
    quiet_third_parties()
    if not args.base or not (args.tuned or args.adapter):
        raise InputError("give --base and --tuned or --adapter")
    from ..evals.run import run_eval

    base, tuned = load_models(args)
    say(f"lm-eval on {args.tasks}: base {base.name}, then tuned {tuned.name}")
    try:
        runs = run_eval(base, tuned, args.tasks.split(","), args.output_path, include_path=args.include_path,
                        limit=args.limit, batch_size=args.batch_size, num_fewshot=args.num_fewshot)
    except (ImportError, ValueError) as err:
        raise InputError(str(err)) from None
    say(f"runs: {runs['base']}, {runs['tuned']}")
    try:
        flips = eval_flips(runs["base"], runs["tuned"], metric=args.metric)
    except EvalLogError as err:
        raise InputError(str(err)) from None
    return _finish(flips, args, base, tuned)


def _common(p, models_required: bool) -> None:
    p.add_argument("--base", metavar="SRC", help="base model (folder, .gguf or hub name)"
                   + ("" if models_required else ": also diagnose every flip"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--tuned", metavar="SRC", help="tuned model (a full checkpoint)")
    which.add_argument("--adapter", metavar="PATH", action="append", help="a PEFT/LoRA adapter on the base")
    p.add_argument("--metric", help="the 0/1 metric that says right (default: each task's first)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="nats a re-scored choice may differ from the log (default 1e-3)")
    p.add_argument("--casebook", metavar="DIR", help="save every flipped sample as a case here")
    p.add_argument("--out", metavar="FILE", help="save the whole table as a case file (JSON)")
    p.add_argument("--report", metavar="FILE", help="write an offline HTML report")
    p.add_argument("--dtype", default=None, help="weights' dtype, e.g. float32")
    p.add_argument("--device", default=None, help="e.g. cpu, cuda")
    p.set_defaults(chat=False)  # lm-eval's contexts are the full text the model saw


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval-flips", help="which lm-eval samples fine-tuning flipped (from --log_samples runs), and why",
        description="Match the sample logs of two lm-eval runs (written with --output_path and "
        "--log_samples) by task and doc_id, and count kept / lost / gained / never per task; with "
        "--base and --adapter/--tuned, re-score every flipped multiple-choice sample and diagnose every "
        "flipped generation.")
    p.add_argument("base_run", metavar="BASE_RUN", help="the base's --output_path folder or results/samples file")
    p.add_argument("tuned_run", metavar="TUNED_RUN", help="the tuned model's")
    _common(p, False)
    p.set_defaults(func=cmd_eval_flips)
    q = sub.add_parser(
        "eval", help="run lm-eval on base and tuned (pip install token-probe[eval]), then eval-flips",
        description="Run lm-evaluation-harness with --log_samples on the base (adapter off) and the "
        "tuned model (adapter on, one set of weights), then what eval-flips does.")
    q.add_argument("--tasks", required=True, help="lm-eval task names, comma-separated")
    q.add_argument("--include-path", metavar="DIR", help="a folder of local task YAML files")
    q.add_argument("--output-path", metavar="DIR", default="eval-runs", help="where the runs go (default eval-runs)")
    q.add_argument("--limit", type=float, default=None, help="samples per task (lm-eval's --limit)")
    q.add_argument("--num-fewshot", type=int, default=None)
    q.add_argument("--batch-size", type=int, default=8)
    _common(q, True)
    q.set_defaults(func=cmd_eval)
