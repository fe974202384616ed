"""Which benchmark samples did fine-tuning flip? lm-eval's sample logs, base vs tuned::

    flips = probe.eval_flips("runs/base", "runs/tuned")    # lm_eval --output_path ... --log_samples
    flips.table()                     # per task: kept / lost / gained / never
    flips.cell("tiny_gen", "lost")    # the flipped samples behind one cell
    flips = flips.diagnose(base, tuned)    # why: per token (choices) or a verdict (generations)
    flips.regression()                # the same flips as a probe.Regression, the task as its tag

Samples are matched by task and ``doc_id``; where both logs carry ``doc_hash`` /
``prompt_hash`` they must agree too (else the sample is *unmatched*, named with why: another
document, or another prompt: template, few-shot or chat template). A sample is right when its
metric is 1: the first metric the log names for the task (``acc`` for multiple choice,
``exact_match`` for generations) unless ``metric=`` says which. A task whose metric is not
0/1 per sample is skipped by name, as are a task only one run has and a
``loglikelihood_rolling`` (perplexity) task. The right choice of a multiple-choice sample is
lm-eval's own (:func:`probe.evals.samples.resolve_gold`). A task logged under several
filters (gsm8k's ``strict-match`` and ``flexible-extract``) is one row per filter, ``task:filter``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

from ..core import registry
from ..core.numbers import json_number
from ..core.registry import register
from ..render.evals import eval_flips_html, eval_flips_text, eval_flip_html, eval_flip_text
from ..shifts.regression import OUTCOMES, Regression, RegressionCase, outcome_of
from .logs import EvalLogError, RunLog, read_run
from .samples import Answer, Sample, answer_for, kind_of, parse


@dataclass(frozen=True)
class EvalFlip:
    """One sample in both runs: its outcome, both answers, and (after ``diagnose``) why."""

    sample: Sample
    outcome: str  # kept / lost / gained / never
    metric: str
    base: Answer
    tuned: Answer
    diagnosis: Any = None  # ChoiceScores (multiple choice) or a Diagnosis (generations)
    note: str = ""  # why there is no diagnosis, when there is none

    @property
    def id(self) -> str:
        return self.sample.id

    @property
    def task(self) -> str:
        return self.sample.task

    @property
    def flipped(self) -> bool:
        return self.outcome in ("lost", "gained")

    def to_dict(self) -> dict:
        d = self.diagnosis
        return {"sample": self.sample.to_dict(), "outcome": self.outcome, "metric": self.metric,
                "base": _answer_dict(self.base), "tuned": _answer_dict(self.tuned),
                "diagnosis": None if d is None else {"type": registry.type_of(d).name, "data": d.to_dict()},
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict) -> "EvalFlip":
        diag = d.get("diagnosis")
        if diag is not None:
            diag = registry.named(diag["type"]).cls.from_dict(diag["data"])
        return cls(Sample.from_dict(d["sample"]), str(d["outcome"]), str(d["metric"]),
                   Answer.from_dict(d["base"]), Answer.from_dict(d["tuned"]), diag, str(d.get("note", "")))

    def __str__(self) -> str:
        return eval_flip_text(self)

    def _repr_html_(self) -> str:
        return eval_flip_html(self)


def _answer_dict(a: Answer) -> dict:
    return {"response": a.response, "raw": a.raw, "logliks": [None if x == -math.inf else x for x in a.logliks],
            "greedy": list(a.greedy), "metrics": {k: json_number(v) for k, v in a.metrics.items()}}


def _flip_inputs(f: EvalFlip) -> dict:
    verdict = getattr(f.diagnosis, "verdict", None)
    return {"prompt": f.sample.prompt, "expected": f.sample.target, "check": f.metric,
            "verdict": verdict, "tags": (f.task, f.outcome), "title": f.id}


register(EvalFlip, default_name="eval_flip", inputs=_flip_inputs)


@dataclass(frozen=True)
class EvalFlips:
    """Every matched sample of two lm-eval runs, with per-task outcome counts."""

    samples: tuple[EvalFlip, ...]
    runs: dict[str, str] = field(default_factory=dict)  # "base"/"tuned" -> model (and files)
    unmatched: tuple[str, ...] = ()  # samples in one run only or whose hashes differ, with why
    skipped: tuple[str, ...] = ()  # tasks left out, with why
    notes: tuple[str, ...] = ()  # which files were read when there was a choice, re-score checks
    configs: dict = field(default_factory=dict)  # task -> its config from the results file

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(s.task for s in self.samples))

    def cell(self, task: str, outcome: str) -> list[EvalFlip]:
        """The samples of ``task`` ("all" for every task) with ``outcome``."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if task != "all" and task not in self.tasks:
            raise KeyError(f"no task {task!r}; tasks: {self.tasks}")
        return [s for s in self.samples if s.outcome == outcome and task in ("all", s.task)]

    @property
    def flips(self) -> list[EvalFlip]:
        """The lost and gained samples."""
        return [s for s in self.samples if s.flipped]

    def table(self) -> list[dict]:
        """One row per task, then "all": {"task", "metric", "n", "lost", "gained", "kept", "never", "net",
        "base", "tuned"} (base/tuned: the share right)."""
        rows = []
        for task in self.tasks + ["all"]:
            mine = [s for s in self.samples if task in ("all", s.task)]
            row = {"task": task, "metric": ",".join(dict.fromkeys(s.metric for s in mine)),
                   **{o: sum(s.outcome == o for s in mine) for o in OUTCOMES}}
            row["n"] = len(mine)
            row["net"] = row["gained"] - row["lost"]
            row["base"] = (row["kept"] + row["lost"]) / len(mine) if mine else float("nan")
            row["tuned"] = (row["kept"] + row["gained"]) / len(mine) if mine else float("nan")
            rows.append(row)
        return rows

    def sample(self, sample_id: str) -> EvalFlip:
        for s in self.samples:
            if s.id == sample_id:
                return s
        raise KeyError(sample_id)

    def regression(self) -> Regression:
        """These outcomes as a :class:`probe.Regression` (tag = task; ids ``task/doc_id``)."""
        cases = tuple(RegressionCase(s.id, s.sample.prompt, (s.task,), s.outcome, s.outcome in ("kept", "lost"),
                                     s.outcome in ("kept", "gained"), s.base.response, s.tuned.response,
                                     _reason(s, s.base), _reason(s, s.tuned)) for s in self.samples)
        return Regression(cases, dict(self.runs), None, self.unmatched + self.skipped)

    def diagnose(self, base, tuned, *, outcomes=("lost", "gained"), ids=None, tolerance: float = 1e-3,
                 max_new_tokens: int | None = None, progress: bool = False) -> "EvalFlips":
        """The flips with their diagnosis (``ids``: only these samples): multiple choice re-scored
        and the first token behind, generations diagnosed (see :mod:`probe.evals.diagnose`)."""
        from .diagnose import diagnose_flips

        return diagnose_flips(self, base, tuned, outcomes=outcomes, ids=ids, tolerance=tolerance,
                              max_new_tokens=max_new_tokens, progress=progress)

    def shift(self, base, tuned, *, outcomes=("lost", "gained"), answers: str = "greedy", **kwargs):
        """:func:`probe.shift` over the flipped samples' prompts (as the raw text lm-eval fed),
        on the tuned model's greedy answers or (``answers="target"``) the samples' targets."""
        from ..shifts.map import shift
        from .diagnose import raw_view

        chosen = [s for s in self.samples if s.outcome in outcomes]
        if not chosen:
            raise ValueError(f"no sample with outcome in {outcomes}")
        prompts = [s.sample.prompt for s in chosen]
        if answers == "target":
            answers = [s.sample.choices[s.sample.gold] if s.sample.gold is not None and s.sample.choices
                       else " " + s.sample.target for s in chosen]  # lm-eval's target_delimiter is " "
        return shift(raw_view(base), raw_view(tuned), prompts, answers=answers, **kwargs)

    def to_dict(self) -> dict:
        return {"samples": [s.to_dict() for s in self.samples], "runs": dict(self.runs),
                "unmatched": list(self.unmatched), "skipped": list(self.skipped), "notes": list(self.notes),
                "configs": self.configs}

    @classmethod
    def from_dict(cls, d: dict) -> "EvalFlips":
        return cls(tuple(EvalFlip.from_dict(s) for s in d["samples"]), dict(d.get("runs", {})),
                   tuple(d.get("unmatched", ())), tuple(d.get("skipped", ())), tuple(d.get("notes", ())),
                   dict(d.get("configs", {})))

    def __str__(self) -> str:
        return eval_flips_text(self)

    def _repr_html_(self) -> str:
        return eval_flips_html(self)


register(EvalFlips, default_name="eval_flips")


def _reason(s: EvalFlip, a: Answer) -> str:
    value = a.metrics.get(s.metric)
    return f"{s.metric} = {value:g}" if value is not None else ""


def _metric_of(task: str, rows: list[dict], metric) -> str:
    if isinstance(metric, dict):
        metric = metric.get(task)
    if metric is not None:
        return str(metric)
    names = rows[0]["metrics"] if rows else []
    return str(names[0]) if names else ""


def _right(value: float) -> bool | None:
    if value in (0.0, 1.0):
        return value == 1.0
    return None


def _by_key(run: RunLog, role: str, task: str, config: dict) -> tuple[dict, list[str]]:
    """(filter, doc_id) -> (Sample, Answer); duplicates named."""
    out, dupes = {}, []
    for row, line in zip(run.samples[task], run.lines.get(task, [])):
        where = f"{run.files[task]}, line {line}"
        sample, answer = parse(row, task, config, where, run.results)
        key = (str(row.get("filter", "none")), sample.doc_id)
        if key in out:
            dupes.append(f"{task}/{sample.doc_id}: doc_id appears twice in the {role} log ({where})")
        out[key] = (sample, answer, row)
    return out, dupes


def _check_runs(base: RunLog, tuned: RunLog) -> tuple[list[str], list[str]]:
    common = [t for t in base.samples if t in tuned.samples]
    if not common:
        raise EvalLogError(f"the runs share no task: base has {sorted(base.samples)} ({base.path}), "
                           f"tuned has {sorted(tuned.samples)} ({tuned.path})")
    if base.results and tuned.results and base.limit != tuned.limit:
        raise EvalLogError(f"the runs used different --limit: base {base.limit!r} ({base.path}), "
                           f"tuned {tuned.limit!r} ({tuned.path}); rerun one with the other's limit")
    skipped = [f"{t}: only in the {role} run ({run.path})" for role, run, other in
               (("base", base, tuned), ("tuned", tuned, base)) for t in run.samples if t not in other.samples]
    return common, skipped


def _compare(run_a: RunLog, run_b: RunLog, task: str) -> list[str]:
    a, b = run_a.config(task), run_b.config(task)
    return [f"{task}: the task's {key} differs between the runs ({a[key]!r:.60} vs {b[key]!r:.60})"
            for key in ("doc_to_text", "num_fewshot", "output_type") if key in a and key in b and a[key] != b[key]]


def eval_flips(base_run: str | os.PathLike | RunLog, tuned_run: str | os.PathLike | RunLog, *,
               metric: str | dict | None = None) -> EvalFlips:
    """Match the samples of two lm-eval runs (``--log_samples``) and sort them into
    kept / lost / gained / never per task (see the module docstring).

    Args:
        base_run, tuned_run: an ``--output_path`` folder, the model folder inside it, a
            ``results_*.json`` or a ``samples_<task>_*.jsonl`` file (or a :class:`RunLog`).
        metric: the 0/1 metric that says right, for every task or as ``{task: metric}``.

    Raises:
        EvalLogError: a run without sample logs, runs sharing no task or with different
            ``--limit``, a sample line lm-eval 0.4 would not write (file, line, field).
    """
    base = base_run if isinstance(base_run, RunLog) else read_run(base_run)
    tuned = tuned_run if isinstance(tuned_run, RunLog) else read_run(tuned_run)
    tasks, skipped = _check_runs(base, tuned)
    unmatched, notes, flips = [], [n for n in (base.note, tuned.note) if n], []
    for key in ("chat_template", "system_instruction", "fewshot_as_multiturn"):
        a, b = base.results.get(key), tuned.results.get(key)
        if base.results and tuned.results and (a is None) != (b is None) or (a is not None and b is not None and a != b):
            notes.append(f"the runs differ in {key}: base {'none' if a is None else repr(a)[:40]}, tuned "
                         f"{'none' if b is None else repr(b)[:40]} (lm-eval's --apply_chat_template / --system_instruction)")
    for task in tasks:
        notes += _compare(base, tuned, task)
        config = base.config(task) or tuned.config(task)
        rows = base.samples[task] or tuned.samples[task]
        kind = kind_of(rows[0], config) if rows else ""
        if kind == "loglikelihood_rolling":  # perplexity: a number per document, no right or wrong
            skipped.append(f"{task}: a loglikelihood_rolling task (perplexity) has no right or wrong answer "
                           "per sample")
            continue
        b_rows, d1 = _by_key(base, "base", task, config)
        t_rows, d2 = _by_key(tuned, "tuned", task, config)
        unmatched += d1 + d2
        name = _metric_of(task, base.samples[task], metric)
        values = [a.metrics.get(name) for _, a, _ in list(b_rows.values()) + list(t_rows.values())]
        bad = next((v for v in values if v is None or _right(v) is None), "none")
        if bad != "none":
            skipped.append(f"{task}: metric {name!r} is " + ("missing from its samples" if bad is None else
                           f"not 0/1 per sample (got {bad:g})") + "; pass metric= a 0/1 metric of the task")
            continue
        for key in sorted(set(b_rows) | set(t_rows), key=lambda k: (k[1], k[0])):
            label = f"{task}/{key[1]}" + ("" if key[0] == "none" else f" (filter {key[0]})")
            if key not in t_rows or key not in b_rows:
                unmatched.append(f"{label}: only in the {'base' if key in b_rows else 'tuned'} run")
                continue
            (bs, ba, _), (ts, ta, _) = b_rows[key], t_rows[key]
            why = [f"{h.replace('_hash', '')} differs" for h in ("doc_hash", "prompt_hash")
                   if h in bs.hashes and h in ts.hashes and bs.hashes[h] != ts.hashes[h]]
            if why:
                unmatched.append(f"{label}: {' and '.join(why)} (another document, template, few-shot "
                                 "or chat template)")
                continue
            if bs.gold is None and ts.gold is not None:  # the tuned run's metrics settled what the base's left open
                bs = replace(bs, gold=ts.gold, target=ts.target, gold_note="")
            if len({k[0] for k in b_rows}) > 1:  # one row per filter (gsm8k's strict / flexible)
                bs = replace(bs, task=f"{task}:{key[0]}")
            ba, ta = answer_for(bs, ba, name), answer_for(bs, ta, name)
            flips.append(EvalFlip(bs, outcome_of(bool(ba.metrics[name]), bool(ta.metrics[name])), name, ba, ta))
    if not flips:
        raise EvalLogError("no sample could be compared: " + "; ".join((notes + skipped + unmatched)[:5]))
    runs = {"base": base.model, "tuned": tuned.model,
            "base_files": ", ".join(base.files.values()), "tuned_files": ", ".join(tuned.files.values())}
    configs = {t: base.config(t) or tuned.config(t) for t in tasks}
    return EvalFlips(tuple(flips), runs, tuple(unmatched), tuple(skipped), tuple(notes), configs)

