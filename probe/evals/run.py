"""``probe eval``: run lm-evaluation-harness on base and tuned, then read the flips.

    runs = probe.run_eval(base, tuned, ["hellaswag"], "runs/")    # runs/base/run, runs/tuned/run
    flips = probe.eval_flips(runs["base"], runs["tuned"])

With a LoRA pair from ``probe.load_pair(src, adapter=...)`` both runs use one set of weights:
the base run with the adapter disabled, the tuned run with it on. lm-eval is an optional
extra: ``pip install token-probe[eval]``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Sequence

EXTRA = "probe eval needs lm-evaluation-harness: pip install token-probe[eval]"


def _lm_eval():
    try:
        import lm_eval
        from lm_eval.loggers import EvaluationTracker
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as err:
        raise ImportError(f"{EXTRA} ({err})") from None
    return lm_eval, EvaluationTracker, HFLM, TaskManager


def _adapter_off(lm):
    """A context where ``lm``'s PEFT adapter is off when ``lm`` is the base of a LoRA pair."""
    if lm.adapter_enabled is False and hasattr(lm.model, "disable_adapter"):
        return lm.model.disable_adapter()
    return contextlib.nullcontext()


def task_manager(tasks: Sequence[str], include_path=None):
    """lm-eval's TaskManager for ``tasks``; only the local folder's tasks are indexed when they
    are all there (indexing lm-eval's own thousands of task files takes about 20 s)."""
    _, _, _, TaskManager = _lm_eval()
    paths = None if include_path is None else (
        [str(p) for p in include_path] if isinstance(include_path, (list, tuple)) else str(include_path))
    if paths is not None:
        local = TaskManager(include_path=paths, include_defaults=False)
        if all(t in local.all_tasks for t in tasks):
            return local
    manager = TaskManager(include_path=paths)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ValueError(f"unknown lm-eval task(s) {unknown}" + ("" if include_path else
                         " (a local task needs include_path=, --include_path)"))
    return manager


def run_one(lm, tasks: Sequence[str], out: str | os.PathLike, *, include_path=None, limit=None,
            batch_size: int = 8, num_fewshot: int | None = None, apply_chat_template: bool = False,
            log: bool = False, manager=None) -> Path:
    """Evaluate one probe LM with lm-eval, writing results and sample logs under ``out``
    (as ``lm_eval --output_path out --log_samples`` does); returns the folder with the files."""
    lm_eval, EvaluationTracker, HFLM, _ = _lm_eval()
    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t]
    manager = manager or task_manager(tasks, include_path)
    tracker = EvaluationTracker(output_path=str(out))
    model = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, device=str(lm.device))
    with _adapter_off(lm):
        res = lm_eval.simple_evaluate(model=model, tasks=list(tasks), task_manager=manager, limit=limit,
                                      num_fewshot=num_fewshot, log_samples=True, evaluation_tracker=tracker,
                                      apply_chat_template=apply_chat_template, verbosity="ERROR" if not log else "INFO")
    if res is None:
        raise RuntimeError("lm-eval returned no results")
    samples = res.pop("samples")
    tracker.general_config_tracker.model_name = lm.name
    tracker.general_config_tracker.model_name_sanitized = "run"
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return Path(out) / "run"


def run_eval(base, tuned, tasks: Sequence[str], out: str | os.PathLike, **kwargs) -> dict[str, Path]:
    """Run lm-eval on ``base`` then ``tuned`` (see :func:`run_one` for ``kwargs``); returns
    ``{"base": folder, "tuned": folder}`` (``out/base/run``, ``out/tuned/run``)."""
    out = Path(out)
    tasks = [t for t in tasks.split(",") if t] if isinstance(tasks, str) else list(tasks)
    kwargs.setdefault("manager", task_manager(tasks, kwargs.get("include_path")))
    return {role: run_one(lm, tasks, out / role, **kwargs) for role, lm in (("base", base), ("tuned", tuned))}
