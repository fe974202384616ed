"""``probe data-loss``: token loss of a training set under base and tuned, by channel and token kind.

    probe data-loss train.jsonl --base SRC --adapter runs/lora --channel source --out loss.json
    probe data-loss train.jsonl --base SRC --adapter epoch-1=A1 --adapter epoch-2=A2 --epochs

With several ``--adapter NAME=PATH`` and ``--epochs``, every adapter is a checkpoint: the
table of which example and channel went wrong at which one is added (``probe.by_checkpoint``).
"""

from __future__ import annotations

from pathlib import Path

from ..cases.case import Case
from ..train.channels import THRESHOLDS
from ..train.masks import MASKS, MAX_LENGTH
from .common import InputError, add_model_args, load_models, quiet_third_parties, say, write_report


def cmd_data_loss(args) -> int:
    from ..train.epochs import by_checkpoint  # lazy: torch loads here, not for --help
    from ..train.loss import data_loss  # lazy: torch loads here, not for --help
    quiet_third_parties()
    if not args.base or not (args.tuned or args.adapter):
        raise InputError("give --base and --tuned or --adapter")
    if not Path(args.data).is_file():
        raise InputError(f"dataset file {args.data!r} does not exist")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be a positive number, got {args.limit}")
    max_length = None if str(args.max_length).lower() == "none" else args.max_length
    if max_length is not None:
        try:
            max_length = int(max_length)
        except ValueError:
            raise InputError(f"--max-length must be a positive number or none, got {args.max_length!r}") from None
        if max_length < 1:
            raise InputError(f"--max-length must be a positive number or none, got {args.max_length!r}")
    th = {k: getattr(args, k) for k in THRESHOLDS if getattr(args, k) is not None}
    base, tuned = load_models(args)
    if args.use_adapter:
        try:
            tuned.use_adapter(args.use_adapter)
        except ValueError as err:
            raise InputError(str(err)) from None
    args.traces = {"all": True, "none": False}.get(args.traces, args.traces)
    kw = dict(mask=args.mask, channel=args.channel, limit=args.limit, thresholds=th, traces=args.traces,
              batch_size=args.batch_size, max_length=max_length)
    say(f"Data loss over {args.data}: base {base.name} vs tuned {tuned.name}")
    try:
        results = {"data_loss": data_loss((base, tuned), args.data, progress=True, **kw)}
        say(str(results["data_loss"]))
        if args.epochs:
            results["epochs"] = by_checkpoint((base, tuned), args.data, **kw)
            say(str(results["epochs"]))
    except (TypeError, ValueError, OSError) as err:
        raise InputError(str(err)) from None
    case = Case.from_result(results, models={"base": base, "tuned": tuned}, title=f"data loss: {Path(args.data).name}",
                            tags=("data-loss",))
    out = case.save(args.out)
    say(f"case file: {Path(out).resolve()}  (probe.Case.load it; results {', '.join(map(repr, results))})")
    if args.report:
        write_report(args.report, title=f"probe data-loss: {Path(args.data).name}", sections=results.values(),
                     intro=f"base {base.name} vs tuned {tuned.name}; data {args.data}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data-loss", help="token loss of a training set under base and tuned: by example, channel, token kind",
        description="Score every training example with the loss mask the trainer uses (TRL's SFTTrainer "
        "defaults unless --mask) under both models: per-example mean and total loss, per channel and "
        "per token kind, and the examples flagged memorized or not learned, the outlier channels.")
    p.add_argument("data", help="the training set: JSON Lines (.jsonl, .gz too) or a text file")
    add_model_args(p)
    p.add_argument("--epochs", action="store_true", help="every loaded adapter is a checkpoint: add the table")
    p.add_argument("--channel", metavar="FIELD", help="the record field that names the channel (e.g. source)")
    p.add_argument("--mask", choices=MASKS, default=None, help="which tokens are scored (default: the trainer's)")
    p.add_argument("--limit", type=int, default=None, help="score the first N examples only")
    p.add_argument("--max-length", default=MAX_LENGTH, metavar="N",
                   help=f"score the first N tokens of each example, as the trainer trains on them (default "
                   f"{MAX_LENGTH}, TRL's SFTConfig.max_length); none scores every token")
    p.add_argument("--batch-size", type=int, default=16, help="examples per batch (default 16)")
    p.add_argument("--traces", choices=("all", "flagged", "none"), default="flagged",
                   help="per-token traces kept in the case file: all examples', the flagged ones' (default), none")
    for k, v in THRESHOLDS.items():
        p.add_argument(f"--{k.replace('_', '-')}", dest=k, type=float, default=None,
                       help=f"threshold {k} in nats or a ratio (default {v}; see the README)")
    p.add_argument("--out", default="data_loss.json", help="the case file to write (default data_loss.json)")
    p.add_argument("--report", metavar="FILE", help="also write an offline HTML report")
    p.set_defaults(func=cmd_data_loss)
