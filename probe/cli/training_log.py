"""``probe training-log``: read a training run's log, print its readings, save a case and a report.

    probe training-log runs/sft                         # a run folder or one log file
    probe training-log runs/sft --out log.json --report log.html
    probe training-log loss.csv --steps-per-epoch 120 --low-loss 0.3

Exit status 0 when the log was read (whatever it warns about), 1 when it could not be read.
"""

from __future__ import annotations

from pathlib import Path

from ..cases.case import Case
from ..train.formats import TrainingLogError
from ..train.readings import Rules
from .common import InputError, say, write_report

RULE_OPTIONS = ("low_loss", "step_window", "step_ratio", "step_min_drop", "eval_points", "spike_z")


def cmd_training_log(args) -> int:
    from ..train.log import training_log  # lazy: torch loads here, not for --help
    changes = {k: getattr(args, k) for k in RULE_OPTIONS if getattr(args, k) is not None}
    try:
        log = training_log(args.path, steps_per_epoch=args.steps_per_epoch, **changes)
    except (TrainingLogError, ValueError, OSError) as err:
        raise InputError(str(err)) from None
    say(str(log))
    if args.out:
        case = Case.from_result({"training_log": log}, title=f"training log: {Path(args.path).name}",
                                tags=("training-log",))
        say(f"case file: {Path(case.save(args.out)).resolve()}  (probe.Case.load it; result 'training_log')")
    if args.report:
        case = Case.from_result({"training_log": log}, title=f"training log: {Path(args.path).name}",
                                tags=("training-log",), id="training-log")
        write_report(args.report, [case], title=f"probe training log: {Path(args.path).name}",
                     intro=f"{log.source} ({log.format}); {len(log.warnings)} warning(s)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "training-log", help="read a training log: loss curve, epochs, and what it says (stepped loss, overfit)",
        description="Read what a trainer logged (HF Trainer / TRL trainer_state.json, also in checkpoint-*/; "
        "LLaMA-Factory trainer_log.jsonl; TensorBoard event files; a CSV or JSON Lines of step and loss) "
        "and print its readings: initial and final loss, a stepped loss at epoch starts (memorization), "
        "eval loss rising while train loss falls, loss spikes, per-channel loss.")
    p.add_argument("path", metavar="RUN_DIR", help="a run folder or one log file")
    p.add_argument("--out", metavar="FILE", help="write a case file (JSON) holding the log and its readings")
    p.add_argument("--report", metavar="FILE", help="write an offline HTML report")
    p.add_argument("--steps-per-epoch", type=float, default=None,
                   help="for a log without an epoch column: epoch = step / N")
    d = Rules()
    p.add_argument("--low-loss", type=float, help=f"final-loss warning threshold, nats/token (default {d.low_loss})")
    p.add_argument("--step-window", type=int, help=f"points on each side of an epoch start (default {d.step_window})")
    p.add_argument("--step-ratio", type=float,
                   help=f"a stepped boundary drops this many times the within-epoch slope (default {d.step_ratio})")
    p.add_argument("--step-min-drop", type=float, help=f"and at least this many nats (default {d.step_min_drop})")
    p.add_argument("--eval-points", type=int, help=f"evaluations the eval-rising rule reads (default {d.eval_points})")
    p.add_argument("--spike-z", type=float, help=f"robust deviations that make a spike (default {d.spike_z})")
    p.set_defaults(func=cmd_training_log)
