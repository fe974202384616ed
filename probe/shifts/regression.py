"""The seesaw: which categories did fine-tuning break while the tuned task went up?

    >>> _ = open("suite.jsonl", "w").write(
    ...     '{"id": "fr", "prompt": "Capital of France?", "expected": "Paris", "tags": ["geo"]}\\n')
    >>> r = probe.regression(base, tuned, "suite.jsonl")          # cases with checks and tags
    >>> r = probe.Regression.from_diagnoses(probe.diagnose_many(base, tuned, "suite.jsonl", progress=False))
    >>> r.table()               # per tag: lost / gained / kept / never counts
    >>> r.cell("geo", "lost")   # the case ids behind one cell

Each case is answered freely (greedy) by both models and checked:

| base | tuned | outcome |
|------|-------|---------|
| right | right | kept   |
| wrong | right | gained |
| right | wrong | lost   |
| wrong | wrong | never  |

The base answers the case's ``base_prompt`` (raw continuation) when it has one, like
:func:`probe.diagnose`'s free base run. From diagnoses the free runs ("tuned", "base") are
used, so a ``not_triggered`` diagnosis whose base answers right counts as lost here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from ..core.registry import register
from ..core.vocab import Outcome, words
from ..diagnosis.checks import as_check
from ..diagnosis.result import Diagnosis, _one_batch, resolve_check
from ..diagnosis.run import CaseError, CaseSpec, read_cases
from ..engine.generation import RowSpec, generate_rows
from ..render.regression import regression_html, regression_text

OUTCOMES = words(Outcome)
NO_TAG = "(no tag)"
ALL = "all"


def outcome_of(base_passed: bool, tuned_passed: bool) -> str:
    if tuned_passed:
        return "kept" if base_passed else "gained"
    return "lost" if base_passed else "never"


@dataclass(frozen=True)
class RegressionCase:
    """One case: what each model answered and whether the check passed."""

    id: str
    prompt: Any
    tags: tuple[str, ...]
    outcome: str  # one of OUTCOMES
    base_passed: bool
    tuned_passed: bool
    base_text: str = ""
    tuned_text: str = ""
    base_reason: str = ""
    tuned_reason: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "RegressionCase":
        return cls(str(d["id"]), d["prompt"], tuple(d.get("tags", ())), str(d["outcome"]),
                   bool(d["base_passed"]), bool(d["tuned_passed"]), str(d.get("base_text", "")),
                   str(d.get("tuned_text", "")), str(d.get("base_reason", "")), str(d.get("tuned_reason", "")))


@dataclass(frozen=True)
class Regression:
    """Outcome counts by tag, each cell backed by its case ids."""

    cases: tuple[RegressionCase, ...]
    models: dict[str, str] = field(default_factory=dict)
    adapter: str | None = None
    errors: tuple[str, ...] = ()  # cases that could not be run, with why

    @property
    def tags(self) -> list[str]:
        """Every tag, sorted; cases without a tag are under "(no tag)"."""
        found = {t for c in self.cases for t in (c.tags or (NO_TAG,))}
        return sorted(found - {NO_TAG}) + ([NO_TAG] if NO_TAG in found else [])

    def cell(self, tag: str, outcome: str) -> list[str]:
        """Ids of the cases with ``tag`` ("all" for every case) and ``outcome``."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        return [c.id for c in self.cases if c.outcome == outcome
                and (tag == ALL or tag in (c.tags or (NO_TAG,)))]

    def table(self) -> list[dict]:
        """One row per tag, then "all": {"tag", "n", "lost", "gained", "kept", "never", "net"}."""
        rows = []
        for tag in self.tags + [ALL]:
            row = {"tag": tag, **{o: len(self.cell(tag, o)) for o in OUTCOMES}}
            row["n"] = sum(row[o] for o in OUTCOMES)
            row["net"] = row["gained"] - row["lost"]
            rows.append(row)
        return rows

    def case(self, case_id: str) -> RegressionCase:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)

    @classmethod
    def from_diagnoses(cls, results: Iterable) -> "Regression":
        """From :func:`probe.diagnose_many` results (a CaseError goes to ``errors``)."""
        cases, errors, models, adapter = [], [], {}, None
        for i, r in enumerate(results):
            if not isinstance(r, Diagnosis):
                errors.append(str(r))
                continue
            t, b = r.run("tuned"), r.run("base")
            cases.append(RegressionCase(r.case_id or f"case-{i}", r.prompt, tuple(r.tags),
                                        outcome_of(b.passed, t.passed), b.passed, t.passed,
                                        b.text, t.text, b.reason, t.reason))
            models, adapter = models or dict(r.models), adapter or r.adapter
        return cls(tuple(cases), models, adapter, tuple(errors))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Regression":
        return cls(tuple(RegressionCase.from_dict(c) for c in d["cases"]),
                   {str(k): str(v) for k, v in d.get("models", {}).items()}, d.get("adapter"),
                   tuple(str(e) for e in d.get("errors", ())))

    def __str__(self) -> str:
        return regression_text(self)

    def _repr_html_(self) -> str:
        return regression_html(self)


register(Regression, default_name="regression")


def _specs(cases, check):
    if isinstance(cases, (str, os.PathLike)):
        return read_cases(cases)
    items = []
    for i, c in enumerate(cases):
        if isinstance(c, str) or (isinstance(c, list) and c and all(isinstance(m, dict) for m in c)):
            if check is None:
                raise ValueError(f"prompt {i} is a bare prompt: give check= to say what right means")
            items.append(CaseSpec(id=f"prompt-{i}", prompt=c, check=check))
        else:
            items.extend(read_cases([c]))
    return items


def regression(base, tuned, cases, *, check=None, max_new_tokens: int = 48, batch_size: int = 16,
               progress: bool = False) -> Regression:
    """Answer every case with both models (greedy) and count lost / gained / kept / never by tag.

    Args:
        cases: a case file (JSONL), or CaseSpecs, case dicts, or bare prompts (then ``check=``
            is required). A case's own check (or expected answer) wins over ``check=``.
        check: the default check (a ``probe.checks`` check, callable or spec).
        progress: accepted for symmetry (no bar is shown).

    A case naming an ``adapter`` runs with that adapter of ``tuned``. A LoRA pair answers
    with both models in one batch per adapter.
    """
    items = _specs(cases, check)
    errors = [str(e) for e in items if isinstance(e, CaseError)]
    specs = [s for s in items if not isinstance(s, CaseError)]
    default = None if check is None else as_check(check)
    checks = {}
    for s in specs:
        try:
            checks[s.id] = (resolve_check(s.check, s.expected) if s.check is not None or s.expected
                            else default)
        except (TypeError, ValueError) as err:
            errors.append(f"case {s.id}: {err}")
    specs = [s for s in specs if checks.get(s.id) is not None]
    by_adapter: dict[str | None, list] = {}
    for s in specs:
        if s.adapter is not None and s.adapter not in tuned.adapters:
            errors.append(f"case {s.id}: no adapter named {s.adapter!r} is loaded (loaded: {tuned.adapters})")
            continue
        by_adapter.setdefault(s.adapter, []).append(s)
    answers: dict[str, tuple] = {}
    for adapter, group in by_adapter.items():
        if adapter is not None:
            tuned.use_adapter(adapter)
        t_rows = [RowSpec(s.prompt) for s in group]
        b_rows = [RowSpec(s.base_prompt, raw=True) if s.base_prompt is not None else RowSpec(s.prompt)
                  for s in group]
        shared = _one_batch(base, tuned)
        kw = dict(max_new_tokens=max_new_tokens, top_k=0, batch_size=batch_size)
        if shared is not None and shared[1][0] is not None:
            lm, (t_name, b_name) = shared
            rows = [RowSpec(r.prompt, r.force, r.raw, r.system, t_name) for r in t_rows]
            rows += [RowSpec(r.prompt, r.force, r.raw, r.system, b_name) for r in b_rows]
            got = generate_rows(lm, rows, **{**kw, "batch_size": 2 * batch_size})
            t_got, b_got = got[: len(group)], got[len(group):]
        else:
            t_got, b_got = generate_rows(tuned, t_rows, **kw), generate_rows(base, b_rows, **kw)
        for s, t, b in zip(group, t_got, b_got):
            answers[s.id] = (s, t.text, b.text)
    out = []
    for s in specs:
        if s.id not in answers:
            continue
        _, t_text, b_text = answers[s.id]
        tr, br = checks[s.id](t_text), checks[s.id](b_text)
        out.append(RegressionCase(s.id, s.prompt, tuple(s.tags), outcome_of(br.passed, tr.passed),
                                  br.passed, tr.passed, b_text, t_text, br.reason, tr.reason))
    return Regression(tuple(out), {"base": base.name, "tuned": tuned.name}, tuned.active_adapter,
                      tuple(errors))
