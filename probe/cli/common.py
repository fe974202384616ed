"""What the commands share: messages, input errors, loading the models, sampling options, saving
cases and reports. Commands import this module, never each other."""

from __future__ import annotations

from pathlib import Path

from ..cases.case import Case
from ..core.files import write_atomically
from ..diagnosis.failure import FailedCase
from ..render.report import casebook_html


def say(message: str) -> None:
    print(message, flush=True)


def quiet_third_parties() -> None:
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


def cases_from(results, specs, base, tuned, note: str = "", tags=()) -> tuple[list, list]:
    """Cases for the diagnoses, and the failed cases (bad lines, cases that raised) apart.

    ``specs`` are the case file's cases, one per result in the same order: each case gets its
    line's note (then the run's ``note``, on its own line). Each case records the adapter its
    diagnosis ran with (switched on ``tuned`` for it).
    """
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


def write_report(path, cases=(), errors=(), title: str = "probe", intro: str = "", sections=None) -> None:
    """The offline HTML page of ``cases`` (and corpus ``sections``: a Shift, a DataLoss, ...), written
    atomically; text no encoding can hold (a lone surrogate) is written escaped, never an error."""
    page = casebook_html(list(cases), title=title, intro=intro, errors=[str(e) for e in errors],
                         sections=list(sections or ()))
    write_atomically(path, page, errors="backslashreplace")
    say(f"report: {Path(path).resolve()}")


def add_model_args(parser, *, required: bool = False, adapter_help: str = "a PEFT/LoRA adapter on the base",
                   use_adapter: bool = True) -> None:
    """--base, --tuned | --adapter (repeatable NAME=PATH), [--use-adapter], --dtype, --device, --chat | --raw:
    what ``load_models`` reads."""
    parser.add_argument("--base", required=required, metavar="SRC", help="base model: folder, .gguf file or hub name")
    which = parser.add_mutually_exclusive_group(required=required)
    which.add_argument("--tuned", metavar="SRC", help="tuned model (a full checkpoint)")
    which.add_argument("--adapter", metavar="[NAME=]PATH", action="append", help=adapter_help)
    if use_adapter:
        parser.add_argument("--use-adapter", metavar="NAME", help="which loaded adapter the tuned model runs with")
    parser.add_argument("--dtype", default=None, help="weights' dtype, e.g. float32, bfloat16")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--chat", dest="chat", action="store_true", default=None,
                     help="render prompts with the chat template (default: when the tokenizer has one)")
    fmt.add_argument("--raw", dest="chat", action="store_false", help="feed prompts as raw text")


def sampling(args) -> dict:
    if args.samples < 0:
        raise InputError(f"--samples must be >= 0, got {args.samples}")
    if not args.temperature > 0:
        raise InputError(f"--temperature must be > 0, got {args.temperature}")
    return {"samples": args.samples or None, "temperature": args.temperature, "seed": args.seed}


def add_sampling(parser, samples: int) -> None:
    parser.add_argument("--samples", type=int, default=samples,
                        help=f"also sample every run this many times; the verdict rests on the pass "
                        f"rates (0: greedy only; default {samples})")
    parser.add_argument("--temperature", type=float, default=1.0, help="of the samples (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def adapter_arg(values: list[str]):
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


def load_models(args, weights: bool = True):
    """The (base, tuned) pair the model options name; ``weights=False`` for a driver whose
    engine's workers do all the running (``--ray``): tokenizer, config and adapters only."""
    from ..models.load import load, load_pair  # lazy: torch loads here, not for --help
    common = dict(dtype=args.dtype, device=args.device, weights=weights)
    if args.chat is not None:
        common["chat"] = args.chat
    try:
        if args.tuned:
            return load(args.base, **common), load(args.tuned, **common)
        return load_pair(args.base, adapter=adapter_arg(args.adapter), **common)
    except (OSError, ValueError, TypeError, ImportError) as err:
        raise InputError(f"cannot load the models: {err}") from None


def add_engine(parser) -> None:
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="run on Ray workers (pip install 'token-probe[ray]'): a cluster's HOST:PORT, "
                        "'auto', or nothing for a local cluster; each worker loads the pair once")
    parser.add_argument("--ray-workers", type=int, default=2, metavar="N", help="Ray workers (default 2)")
    parser.add_argument("--ray-gpus", type=float, default=0, metavar="G", help="GPUs per Ray worker (default 0)")


def engine_from(args):
    """None (local), or a Ray engine connected before any model loads."""
    if getattr(args, "ray", None) is None:
        return None
    if args.ray_workers < 1:
        raise InputError(f"--ray-workers must be >= 1, got {args.ray_workers}")
    from ..distributed.ray_engine import RayStartError, ray_engine

    try:
        return ray_engine(None if args.ray == "local" else args.ray, args.ray_workers,
                          {"CPU": 1, "GPU": args.ray_gpus} if args.ray_gpus else None)
    except (ImportError, ConnectionError, ValueError, RayStartError) as err:
        raise InputError(f"--ray: {err}") from None
