"""Reading what trainers write into plain records: one ``{"step": int, name: float, ...}`` per
logged event, names normalized (``train/loss`` -> ``loss``, ``eval/loss`` -> ``eval_loss``,
``lr`` -> ``learning_rate``, ``current_steps`` -> ``step``).

Formats: HF Trainer / TRL ``trainer_state.json`` (its ``log_history``), LLaMA-Factory's
``trainer_log.jsonl``, TensorBoard event files (:mod:`probe.train.tensorboard`), a CSV or JSON
Lines file of step and loss. :func:`find` picks the log in a run folder.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from ..core.lines import json_objects, read_lines
from .tensorboard import EventFileError, scalars


class TrainingLogError(ValueError):
    """A training log that cannot be read: names the file (line, field) and what was looked for."""


LOOKED_FOR = ("trainer_state.json (HF Trainer / TRL, also in checkpoint-*/), trainer_log.jsonl "
              "(LLaMA-Factory), events.out.tfevents.* (TensorBoard, also in runs/*/), training_log.json "
              "(probe's demo trainer); or give a .csv / .jsonl file with a step and a loss column")

STEP_KEYS = ("step", "global_step", "steps", "current_steps", "iteration", "iter")
ALIASES = {"lr": "learning_rate", "train_learning_rate": "learning_rate", "gradient_norm": "grad_norm"}


def normalize(key: str) -> str:
    """A log key as probe names it: lower case, ``train/`` dropped, ``eval/x`` -> ``eval_x``."""
    k = key.strip().lower()
    if k.startswith("train/"):
        k = k[len("train/"):]
    elif k.startswith("eval/"):
        k = "eval_" + k[len("eval/"):]
    k = k.replace("/", "_")
    return ALIASES.get(k, k)


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# the fields probe reads as numbers; a value there that is not one is refused by line and field
NUMBERS = {"epoch", "learning_rate", "grad_norm"}


def _read_as_number(key: str) -> bool:
    return key in NUMBERS or key == "loss" or key.endswith("_loss") or key.startswith("loss_")


def _record(raw: dict, where: str) -> dict | None:
    """One normalized record from a raw dict (None when it has no step). An empty value (CSV's
    empty cell, JSON's null) is absent; a loss, epoch, learning rate or grad norm that is not a
    number raises, naming ``where`` and the field."""
    out: dict = {}
    step = None
    for key, value in raw.items():
        k = normalize(str(key))
        if k in STEP_KEYS:
            if step is None and value not in (None, ""):
                number = _number(value)
                if number is None or number != int(number):
                    raise TrainingLogError(f"{where}: field {key!r} is not a step number: {value!r}")
                step = int(number)
            continue
        number = _number(value)
        if number is not None:
            out[k] = number
        elif value not in (None, "") and _read_as_number(k):
            raise TrainingLogError(f"{where}: field {key!r} is not a number: {value!r:.60}")
    if step is None:
        return None
    out["step"] = step
    return out


def read_trainer_state(path: Path) -> list[dict]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TrainingLogError(f"{path}: not readable JSON ({err})") from None
    if isinstance(state, dict) and isinstance(state.get("losses"), list) and "log_history" not in state:
        return _demo_log(path, state)
    history = state if isinstance(state, list) else state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise TrainingLogError(f"{path}: no 'log_history' list (is it a trainer_state.json?) and not a list "
                               f"of step/loss objects")
    out = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise TrainingLogError(f"{path}: log_history[{i}] is not an object")
        rec = _record(entry, f"{path}: log_history[{i}]")
        if rec is not None:
            out.append(rec)
    return out


def _demo_log(path: Path, state: dict) -> list[dict]:
    """probe's demo trainer's training_log.json: one loss per step; epoch from batch size and examples."""
    batch = (state.get("settings") or {}).get("batch_size")
    examples = state.get("examples")
    out = []
    for i, loss in enumerate(state["losses"], 1):
        number = _number(loss)
        if number is None:
            raise TrainingLogError(f"{path}: losses[{i - 1}] is not a number: {loss!r}")
        rec = {"step": i, "loss": number}
        if batch and examples:
            rec["epoch"] = i * batch / examples
        out.append(rec)
    return out


def read_jsonl(path: Path) -> list[dict]:
    """LLaMA-Factory's trainer_log.jsonl or any JSON Lines of step/loss objects."""
    out = []
    try:
        objects = list(json_objects(path, TrainingLogError))
    except OSError as err:
        raise TrainingLogError(f"{path}: not readable ({err})") from None
    for n, raw in objects:
        rec = _record(raw, f"{path}, line {n}")
        if rec is None:
            raise TrainingLogError(f"{path}, line {n}: no step field (looked for {', '.join(STEP_KEYS)})")
        out.append(rec)
    return out


def _text_lines(path: Path):
    """Each line's text, a line end put back (for the csv module); a line that is not UTF-8
    raises naming it (each line is decoded apart, so the error is where the bad byte is)."""
    for line in read_lines(path):
        if line.text is None:
            raise TrainingLogError(f"{path}, {line.where}: {line.error}")
        yield line.text + "\n"


def read_csv(path: Path) -> list[dict]:
    rows = []
    try:
        reader = csv.DictReader(_text_lines(path))
        for row in reader:
            rows.append((reader.line_num, row))
    except OSError as err:
        raise TrainingLogError(f"{path}: not a readable CSV file ({err})") from None
    except csv.Error as err:
        raise TrainingLogError(f"{path}, line {reader.line_num}: not a readable CSV row ({err})") from None
    out = []
    for i, (n, row) in enumerate(rows):
        if i == 0 and not any(normalize(str(k)) in STEP_KEYS for k in row if k is not None):
            raise TrainingLogError(f"{path}, line 1: no step column (looked for {', '.join(STEP_KEYS)}); "
                                   f"columns: {', '.join(str(k) for k in row if k is not None)}")
        rec = _record({k: v for k, v in row.items() if k is not None}, f"{path}, line {n}")
        if rec is None:
            raise TrainingLogError(f"{path}, line {n}: empty step")
        out.append(rec)
    return out


def read_events(paths) -> list[dict]:
    """TensorBoard event files -> one record per step (a later file's value wins at a step)."""
    by_step: dict[int, dict] = defaultdict(dict)
    for p in sorted(paths):
        try:
            values = scalars(p)
        except (OSError, EventFileError) as err:
            raise TrainingLogError(str(err)) from None
        for tag, step, value, _wall in values:
            by_step[step][normalize(tag)] = value
    return [{**v, "step": s} for s, v in sorted(by_step.items())]


def _events_in(folder: Path) -> list[Path]:
    own = sorted(folder.glob("events.out.tfevents.*"))
    if own:
        return own
    runs = sorted({p.parent for p in folder.glob("runs/*/events.out.tfevents.*")})
    if len(runs) > 1:
        raise TrainingLogError(f"{folder}: {len(runs)} TensorBoard runs ({', '.join(r.name for r in runs)}); "
                               f"give one of them")
    return sorted(runs[0].glob("events.out.tfevents.*")) if runs else []


def _global_step(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8")).get("global_step") or 0)
    except (OSError, ValueError, AttributeError):
        return -1


def find(folder: Path) -> tuple[str, list[Path]]:
    """The log of a run folder: (format, files). trainer_state.json first (the top-level one or a
    checkpoint's, whichever has the largest global_step), then trainer_log.jsonl, then TensorBoard."""
    states = [folder / "trainer_state.json"] + sorted(folder.glob("checkpoint-*/trainer_state.json"))
    states = [p for p in states if p.is_file()]
    if states:
        best = max(states, key=lambda p: (_global_step(p), p.parent == folder))
        return "trainer_state", [best]
    if (folder / "trainer_log.jsonl").is_file():
        return "llamafactory", [folder / "trainer_log.jsonl"]
    if (folder / "training_log.json").is_file():
        return "probe_demo", [folder / "training_log.json"]
    events = _events_in(folder)
    if events:
        return "tensorboard", events
    raise TrainingLogError(f"no training log in {folder}: looked for {LOOKED_FOR}")


def _first_line(path: Path) -> str:
    """The first non-blank line's text, read line by line (a bad byte further down is left to
    the reader, which names its line; a bad first line is named here)."""
    try:
        for line in read_lines(path):
            if line.text is None:
                raise TrainingLogError(f"{path}, {line.where}: {line.error}")
            if line.text.strip():
                return line.text
    except OSError as err:
        raise TrainingLogError(f"{path}: not readable ({err})") from None
    return ""


def sniff(path: Path) -> str:
    """The format of one file, from its name and first bytes."""
    name = path.name
    if name.startswith("events.out.tfevents"):
        return "tensorboard"
    if name == "trainer_log.jsonl":
        return "llamafactory"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".jsonl":
        return "llamafactory" if '"current_steps"' in _first_line(path) else "jsonl"
    if suffix == ".json":
        return "probe_demo" if name == "training_log.json" else "trainer_state"
    raise TrainingLogError(f"{path}: not a training log probe knows; looked for {LOOKED_FOR}")


READERS = {"trainer_state": lambda ps: read_trainer_state(ps[0]), "probe_demo": lambda ps: read_trainer_state(ps[0]), "llamafactory": lambda ps: read_jsonl(ps[0]),
           "jsonl": lambda ps: read_jsonl(ps[0]), "csv": lambda ps: read_csv(ps[0]), "tensorboard": read_events}


def read(path) -> tuple[str, list[Path], list[dict]]:
    """(format, files read, records) of a run folder or one log file."""
    p = Path(path)
    if p.is_dir():
        fmt, files = find(p)
    elif p.is_file():
        fmt, files = sniff(p), [p]
    else:
        raise TrainingLogError(f"{path}: no such file or folder")
    return fmt, files, READERS[fmt](files)
