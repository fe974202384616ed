"""Reading lm-evaluation-harness runs written with ``--output_path OUT --log_samples``.

lm-eval (0.4.x) writes, per model::

    OUT/<model_name_sanitized>/results_<timestamp>.json
    OUT/<model_name_sanitized>/samples_<task>_<timestamp>.jsonl     (one per task, same stamp)

A sample line holds ``doc_id``, ``doc``, ``target``, ``arguments`` (``gen_args_i`` ->
``arg_0`` the context, ``arg_1`` a continuation or the generation settings), ``resps`` /
``filtered_resps`` (numbers saved as strings), ``filter``, ``metrics`` (names) and each
metric's value, plus ``doc_hash`` / ``prompt_hash`` / ``target_hash``.

A run can be named by its ``OUT`` folder, the model folder inside it, its ``results_*.json``
or one ``samples_<task>_*.jsonl``. When a folder holds several runs (lm-eval adds new stamped
files on a rerun) the newest results file and its own samples are read, and ``Run.note`` says so.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.lines import json_objects

RESULTS = re.compile(r"^results_(?P<stamp>.+)\.json$")
SAMPLES = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d\d-\d\dT[\d\-.:]+)\.jsonl$")
NEEDS = "run lm_eval with --log_samples (and --output_path) to write them"
REQUIRED = ("doc_id", "target", "arguments", "resps", "filtered_resps", "metrics")


class EvalLogError(ValueError):
    """A run that cannot be read: names the path (and line and field where one is to blame)."""


@dataclass(frozen=True)
class RunLog:
    """One lm-eval run as read from disk."""

    path: str  # what was given
    results: dict  # the results_*.json content ({} when only sample files were given)
    samples: dict[str, list[dict]]  # task -> its sample lines, in file order
    files: dict[str, str]  # task -> the samples file read
    results_file: str | None = None
    note: str = ""  # which files were picked when there was a choice
    lines: dict[str, list[int]] = field(default_factory=dict)  # task -> line number of each sample

    @property
    def model(self) -> str:
        return str(self.results.get("model_name") or self.results.get("config", {}).get("model_args")
                   or Path(self.path).name)

    @property
    def version(self) -> str:
        return str(self.results.get("lm_eval_version") or "unknown")

    def config(self, task: str) -> dict:
        return dict(self.results.get("configs", {}).get(task) or {})

    @property
    def limit(self):
        return self.results.get("config", {}).get("limit")

    def n_samples(self, task: str) -> int | None:
        n = self.results.get("n-samples", {}).get(task)
        return n.get("effective") if isinstance(n, dict) else None


def _newest(results: list[Path]) -> tuple[Path, str]:
    results = sorted(results, key=lambda p: RESULTS.match(p.name)["stamp"])
    note = "" if len(results) == 1 else (
        f"read {results[-1].name}, the newest of {len(results)} results files in {results[-1].parent}")
    return results[-1], note


def _sample_files(folder: Path, stamp: str | None) -> dict[str, Path]:
    found = {}
    for p in sorted(folder.iterdir()):
        m = SAMPLES.match(p.name)
        if m and (stamp is None or m["stamp"] == stamp):
            found[m["task"]] = p
    return found


def _locate(path: Path) -> tuple[Path | None, dict[str, Path], str]:
    if path.is_file():
        if RESULTS.match(path.name):
            files = _sample_files(path.parent, RESULTS.match(path.name)["stamp"])
            return path, files, ""
        m = SAMPLES.match(path.name)
        if m:
            results = path.parent / f"results_{m['stamp']}.json"
            return (results if results.is_file() else None), {m["task"]: path}, ""
        raise EvalLogError(f"{path}: not an lm-eval results_*.json or samples_<task>_*.jsonl file")
    if not path.is_dir():
        raise EvalLogError(f"{path}: no such file or folder")
    results = [p for p in path.iterdir() if RESULTS.match(p.name)]
    if not results:  # OUT/ holds one folder per model
        subs = [d for d in sorted(path.iterdir()) if d.is_dir()
                and any(RESULTS.match(p.name) or SAMPLES.match(p.name) for p in d.iterdir())]
        if len(subs) > 1:
            raise EvalLogError(f"{path} holds runs of {len(subs)} models ({', '.join(d.name for d in subs)}): "
                               "name the model's folder")
        if len(subs) == 1:
            return _locate(subs[0])
        files = _sample_files(path, None)
        if not files:
            raise EvalLogError(f"{path}: no lm-eval results or sample logs found; {NEEDS}")
        return None, files, ""
    newest, note = _newest(results)
    return newest, _sample_files(path, RESULTS.match(newest.name)["stamp"]), note


def _read_samples(file: Path, version: str) -> tuple[list[dict], list[int]]:
    rows, lines = [], []
    for n, row in json_objects(file, EvalLogError):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise EvalLogError(
                f"{file}, line {n}: field {missing[0]!r} is missing (lm-eval {version}); probe reads "
                f"the sample logs of lm-eval 0.4 (fields {', '.join(REQUIRED)})")
        if not isinstance(row["metrics"], list) or not isinstance(row["arguments"], dict):
            raise EvalLogError(f"{file}, line {n}: field 'metrics' must be a list and 'arguments' an "
                               f"object (lm-eval {version}); probe reads the sample logs of lm-eval 0.4")
        rows.append(row)
        lines.append(n)
    return rows, lines


def read_run(path: str | os.PathLike) -> RunLog:
    """Read one lm-eval run (see the module docstring).

    Raises:
        EvalLogError: no sample logs (says that ``--log_samples`` is needed), an unreadable
            file, or a sample line without the fields lm-eval 0.4 writes (file, line, field).
    """
    given = Path(path)
    results_file, files, note = _locate(given)
    results = {}
    if results_file is not None:
        try:
            results = json.loads(results_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise EvalLogError(f"{results_file}: cannot read it ({err})") from None
        if not isinstance(results, dict):
            raise EvalLogError(f"{results_file}: not an lm-eval results object")
    if not files:
        raise EvalLogError(f"{given}: {results_file.name if results_file else 'this run'} has no sample "
                           f"logs (samples_<task>_*.jsonl); {NEEDS}")
    version = str(results.get("lm_eval_version") or "unknown")
    samples, lines = {}, {}
    for task, file in files.items():
        samples[task], lines[task] = _read_samples(file, version)
    return RunLog(str(given), results, samples, {t: str(f) for t, f in files.items()},
                  None if results_file is None else str(results_file), note, lines)
