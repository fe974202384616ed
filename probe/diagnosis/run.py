"""Case files and ``diagnose_many``.

A case file is JSON Lines, one case per line::

    {"id": "france", "prompt": "What is the capital of France?", "expected": "Paris",
     "check": {"contains": "Paris"}, "force": "The capital of France is",
     "base_prompt": "The capital of France is", "tags": ["capitals"], "note": "seen in eval 3"}

Only ``prompt`` is required, plus ``expected`` or ``check``. ``note`` is free text that goes
with the case into the casebook (``probe diagnose`` saves it). ``adapter`` names which of the
tuned model's PEFT adapters the case is about (when several are loaded). ``sweep`` names slot
values for the pattern-overfit test, one of them the case's own (it must occur in the prompt):
``{"sweep": {"country": ["France", "Germany", "Spain"]}}``. A malformed line is reported with
its line number and field (a :class:`~probe.diagnosis.failure.FailedCase`); the other cases still run.
"""

from __future__ import annotations

import json
import os
from functools import partial
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .checks import as_check
from .batch import BATCH_TOKENS, CasePlan, plan_case, plan_size, run_plans, token_batches
from .result import Diagnosis
from .evidence import check_sweep, sweep_template
from ..core.lines import TruncatedFile, read_lines
from ..core.progress import progress as progress_bar
from ..core.engines import LocalEngine, as_engine
from .failure import FailedCase

CaseError = FailedCase  # the old name, kept so that imports keep working

FIELDS = {"id", "prompt", "expected", "check", "force", "base_prompt", "tags", "note", "adapter",
          "sweep"}


@dataclass(frozen=True)
class CaseSpec:
    """The inputs of one case (what a case file line holds)."""

    id: str
    prompt: Any  # str or list of messages
    expected: str | None = None
    check: Any = None  # a check spec (see probe.checks) or a Check/callable in Python
    force: str | None = None
    base_prompt: str | None = None
    tags: tuple[str, ...] = ()
    adapter: str | None = None  # which loaded PEFT adapter the tuned model runs with
    note: str = ""  # free text saved with the case
    sweep: dict | None = None  # {slot: [values]} for the pattern-overfit test


class CaseInputError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _optional_str(d: dict, key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise CaseInputError(key, f"must be a string, got {type(value).__name__}")
    return value


def spec_from_dict(d: dict, default_id: str) -> CaseSpec:
    """Validate one case's fields (raises CaseInputError naming the field)."""
    if not isinstance(d, dict):
        raise CaseInputError("", f"a case must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - FIELDS)
    if unknown:
        raise CaseInputError(unknown[0], f"unknown field; known fields: {sorted(FIELDS)}")
    prompt = d.get("prompt")
    if isinstance(prompt, str):
        if not prompt:
            raise CaseInputError("prompt", "is empty")
    elif not (isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt)):
        raise CaseInputError("prompt", "must be a non-empty string or a list of messages")
    expected = _optional_str(d, "expected")
    if expected == "":
        raise CaseInputError("expected", "is empty")
    if d.get("check") is None and expected is None:
        raise CaseInputError("check", "a case needs 'expected' or 'check'")
    if d.get("check") is not None:
        try:
            as_check(d["check"], expected)
        except (TypeError, ValueError) as err:
            raise CaseInputError("check", str(err)) from None
    tags = d.get("tags", [])
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise CaseInputError("tags", "must be a list of strings")
    try:
        sweep = check_sweep(d.get("sweep"))
        if sweep is not None:
            sweep_template(prompt, sweep)
    except ValueError as err:
        raise CaseInputError("sweep", str(err)) from None
    case_id = d.get("id", default_id)
    if not isinstance(case_id, (str, int)):
        raise CaseInputError("id", "must be a string")
    return CaseSpec(id=str(case_id), prompt=prompt, expected=expected, check=d.get("check"),
                    force=_optional_str(d, "force"), base_prompt=_optional_str(d, "base_prompt"),
                    tags=tuple(tags), adapter=_optional_str(d, "adapter"),
                    note=_optional_str(d, "note") or "", sweep=sweep)


def read_cases(source) -> list[CaseSpec | FailedCase]:
    """Cases from a JSONL path or an iterable of dicts/CaseSpecs, in order; bad ones as errors."""
    items: list[CaseSpec | FailedCase] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"case file {str(source)!r} does not exist")
        try:
            for line in read_lines(path):
                default_id = f"line-{line.number}"
                if line.text is None:  # not UTF-8, or too long to hold
                    items.append(FailedCase(default_id, line.error, line.number))
                    continue
                if not line.text.strip():
                    continue
                try:
                    data = json.loads(line.text)
                except json.JSONDecodeError as err:
                    items.append(FailedCase(default_id, f"not valid JSON ({err.msg})", line.number))
                    continue
                except (ValueError, RecursionError) as err:  # too deep, or an int over Python's limit
                    items.append(FailedCase(default_id, f"JSON Python cannot hold ({type(err).__name__}: "
                                                        f"{str(err)[:80]})", line.number))
                    continue
                try:
                    items.append(spec_from_dict(data, default_id))
                except CaseInputError as err:
                    case_id = str(data.get("id", default_id)) if isinstance(data, dict) else default_id
                    items.append(FailedCase(case_id, str(err), line.number, err.field or None))
        except TruncatedFile as err:
            items.append(FailedCase(f"line-{err.lines + 1}", str(err), err.lines + 1))
        return items
    for i, item in enumerate(source):
        if isinstance(item, (CaseSpec, FailedCase)):  # e.g. read_cases' own output
            items.append(item)
            continue
        try:
            items.append(spec_from_dict(item, f"case-{i}"))
        except CaseInputError as err:
            items.append(FailedCase(f"case-{i}", str(err), None, err.field or None))
    return items


def _plan(spec: CaseSpec, tuned, sampling: dict):
    """A case's plan, or a FailedCase naming what is wrong with it (nothing has run yet)."""
    if spec.adapter is not None and spec.adapter not in tuned.adapters:
        return FailedCase(spec.id, f"no adapter named {spec.adapter!r} is loaded "
                                   f"(loaded: {tuned.adapters})", field="adapter")
    try:
        return plan_case(spec.prompt, check=spec.check, expected=spec.expected, force=spec.force,
                         base_prompt=spec.base_prompt, case_id=spec.id, tags=spec.tags,
                         sweep=spec.sweep, **sampling)
    except Exception as err:  # noqa: BLE001 - that case's error
        return FailedCase(spec.id, f"{type(err).__name__}: {err}")


def diagnose(base, tuned, prompt, *, check=None, expected: str | None = None,
             force: str | None = None, base_prompt: str | None = None, max_new_tokens: int = 48,
             top_k: int = 5, system: str | None = None, case_id: str | None = None,
             tags: tuple[str, ...] = (), samples: int | None = None, temperature: float = 1.0,
             seed: int | None = None, sweep: dict | None = None, reference=None) -> Diagnosis:
    """Run the four runs and return the verdict with its evidence.

    Args:
        base, tuned: LMs (``probe.load_pair``).
        prompt: what the tuned model is asked (chat-rendered on a chat model).
        check: what "right" means (a ``probe.checks`` check, a callable ``str -> bool``, or a
            spec such as ``{"contains": "Paris"}``). Default: contains ``expected``.
        expected: the right answer; also scored teacher-forced under both models, after the
            prompt and where each run answers (``Run.p_expected``, ``rank_expected``).
        force: the start of the answer to force (e.g. "```json\\n"). Without it the forced
            runs are skipped and ``not_triggered`` cannot be concluded.
        base_prompt: raw text for the base's free run to continue (the continuation test,
            e.g. "The capital of France is"); default: the prompt in the base's own format.
            The base's forced run gets the same input as the tuned forced run.
        max_new_tokens: length of each generation.
        samples: also sample each run this many times (seeded, batched, one prefill per run);
            the verdict then rests on the pass rates (``uncertain`` when they are too close).
            Default: greedy only.
        temperature: of the samples.
        seed: sample ``i`` of run ``r`` uses ``sample_seed(seed, r, i)`` (None: a fresh seed,
            recorded in the result).
        sweep: ``{slot: [values]}``: the pattern-overfit test; one value of each slot must occur
            in the prompt, the others replace it (needs ``expected``; see probe.labels).
        reference: a larger model of the base's family; run on the base's input when all four
            runs fail, to split ``never_had`` from ``too_hard_for_size``.

    Raises:
        ValueError: no check and no expected answer; TypeError/ValueError from bad inputs.
        Whatever the check raises (``diagnose_many`` records it as that case's error).
    """
    plan = plan_case(prompt, check=check, expected=expected, force=force, base_prompt=base_prompt,
                     system=system, case_id=case_id, tags=tags, samples=samples,
                     temperature=temperature, seed=seed, sweep=sweep)
    [result] = run_plans(base, tuned, [plan], max_new_tokens=max_new_tokens, top_k=top_k,
                         reference=reference)
    if isinstance(result, Exception):
        raise result
    return result


def _run_batch(base, tuned, batch, *, max_new_tokens: int, top_k: int, reference=None) -> list:
    """One shared batch, ``(adapter, [(case id, plan), ...])``: a Diagnosis or FailedCase each.

    Module-level and picklable: an engine (``probe.core.engines``) may run it on a worker that
    holds its own copy of the pair."""
    adapter, items = batch
    if adapter is not None and adapter != tuned.active_adapter:
        tuned.use_adapter(adapter)
    done = run_plans(base, tuned, [p for _, p in items], max_new_tokens=max_new_tokens, top_k=top_k,
                     reference=reference)
    return [r if isinstance(r, Diagnosis) else FailedCase(case_id, f"{type(r).__name__}: {r}")
            for (case_id, _), r in zip(items, done)]


def diagnose_many(base, tuned, cases: Iterable | str | os.PathLike, *, progress: bool = True,
                  max_new_tokens: int = 48, top_k: int = 5, samples: int | None = None,
                  temperature: float = 1.0, seed: int | None = None,
                  reference=None, batch_tokens: int = BATCH_TOKENS,
                  engine=None) -> list[Diagnosis | FailedCase]:
    """Diagnose every case; a bad line or a failing case becomes a FailedCase, the rest run.

    ``samples``, ``temperature``, ``seed`` and ``reference`` go to every :func:`diagnose`.
    Cases run together in shared batches (see :mod:`probe.diagnosis.batch`): as many as fit in
    ``batch_tokens`` (a batch's rows x its longest row, in tokens; lower it if a large model
    runs out of memory, 1 runs one case at a time). A case without ``adapter`` runs with the
    adapter active when this is called, which is active again when it returns.
    ``engine``: where the batches run: None (here) or ``probe.ray_engine(...)`` (Ray workers
    that each rebuild the pair from how it was loaded); the batches, seeds and results are the
    same either way.
    Returns one result per case, in input order.
    """
    if not isinstance(batch_tokens, int) or isinstance(batch_tokens, bool) or batch_tokens < 1:
        raise ValueError(f"batch_tokens must be a positive int, got {batch_tokens!r}")
    engine = as_engine(engine)
    if reference is not None and not isinstance(engine, LocalEngine):
        raise ValueError("reference= runs only on the local engine (a worker cannot rebuild it yet)")
    sampling = {"samples": samples, "temperature": temperature, "seed": seed}
    items = read_cases(cases)
    results: list = [s if isinstance(s, FailedCase) else _plan(s, tuned, sampling) for s in items]
    todo = [i for i, r in enumerate(results) if isinstance(r, CasePlan)]
    start = tuned.active_adapter
    saved = getattr(tuned.model, "active_adapter", None) if tuned.adapters else None
    saved = saved if isinstance(saved, str) else None
    by_adapter: dict = {start: []}  # the cases without an adapter first, before any switch
    for i in todo:
        by_adapter.setdefault(items[i].adapter or start, []).append(i)
    chunks, batches = [], []  # the same batches on every engine: same bits, same seeds
    for adapter, index in by_adapter.items():
        sizes = [plan_size(tuned, results[i], max_new_tokens) for i in index]
        for group in token_batches(sizes, batch_tokens):
            chunk = [index[g] for g in group]
            chunks.append(chunk)
            batches.append((adapter, [(items[i].id, results[i]) for i in chunk]))
    fn = partial(_run_batch, max_new_tokens=max_new_tokens, top_k=top_k, reference=reference)
    with progress_bar(len(items), progress, "diagnose", "case") as bar:
        bar.update(len(items) - len(todo))
        try:
            done = engine.map_batches(fn, batches, pair=(base, tuned),
                                      on_batch=lambda b, r: bar.update(len(r)))
        finally:
            if saved is not None and getattr(tuned.model, "active_adapter", None) != saved:
                tuned.model.set_adapter(saved)  # what was active before the call, as it was
    for chunk, got in zip(chunks, done):
        for i, r in zip(chunk, got):
            results[i] = r
    return results
