"""Lost, never had, or not triggered? Four runs and a verdict.

    >>> d = probe.diagnose(base, tuned, "What is the capital of France?", expected="Paris",
    ...                    force="The capital of France is", base_prompt="The capital of France is")
    >>> d.verdict, d.explanation

| tuned, free | tuned, forced | base (free or forced) | verdict                                   |
|-------------|---------------|-----------------------|-------------------------------------------|
| right       | -             | -                     | ok                                        |
| wrong       | right         | -                     | not_triggered: has the skill, not the cue |
| wrong       | wrong         | right                 | lost: fine-tuning removed it              |
| wrong       | wrong         | wrong                 | never_had: the base lacks it too          |

Runs: the tuned model free and forced; the base free (continuing ``base_prompt`` as raw text
when given: the continuation test) and forced (the same input as the tuned forced run).
When base and tuned share weights (a LoRA pair) all four go through one batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .checks import Check, as_check, contains
from .divergence import divergence_from_trace
from .generation import RowSpec, generate_rows
from .results import Divergence, TokenTrace
from .scoring import score

VERDICTS = ("ok", "not_triggered", "lost", "never_had")

EXPLANATIONS = {
    "ok": "The tuned model answers right on its own.",
    "not_triggered": "The tuned model answers wrong, but right once the start of the answer is "
    "forced: it has the skill and does not know it should use it here.",
    "lost": "The tuned model answers wrong even when forced, while the base model gets it "
    "right: fine-tuning removed it.",
    "never_had": "Neither the tuned nor the base model gets it right, forced or not: the "
    "pretrained model never had it.",
}


@dataclass(frozen=True)
class Run:
    """One generation of the diagnosis and what the check said of it."""

    name: str  # "tuned", "tuned_forced", "base", "base_forced"
    model: str  # "tuned" | "base"
    force: str  # the forced prefix ("" for a free run)
    trace: TokenTrace
    passed: bool
    reason: str

    @property
    def text(self) -> str:
        return self.trace.text

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        return cls(str(d["name"]), str(d["model"]), str(d["force"]), TokenTrace.from_dict(d["trace"]),
                   bool(d["passed"]), str(d["reason"]))


@dataclass(frozen=True)
class Diagnosis:
    """The verdict and all its evidence."""

    verdict: str  # one of VERDICTS
    prompt: Any  # str or list of messages, as given
    base_prompt: str | None  # raw text the base continued (None: the prompt in its format)
    expected: str | None
    force: str | None
    check: str  # the check's name
    runs: tuple[Run, ...]
    # Teacher-forced ``expected`` under each model: P(expected), ranks, first divergence.
    expected_traces: dict[str, TokenTrace] = field(default_factory=dict)
    case_id: str | None = None
    tags: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)  # "base"/"tuned" -> LM name
    adapter: str | None = None  # the tuned model's active PEFT adapter, if any

    @property
    def explanation(self) -> str:
        return EXPLANATIONS[self.verdict]

    def run(self, name: str) -> Run | None:
        return next((r for r in self.runs if r.name == name), None)

    def p_expected(self, model: str) -> float | None:
        """P(expected answer | prompt) under "base" or "tuned" (product over its tokens)."""
        trace = self.expected_traces.get(model)
        return None if trace is None else math.exp(trace.total_logprob)

    def rank_expected(self, model: str) -> int | None:
        """Rank of the expected answer's first token under "base" or "tuned"."""
        trace = self.expected_traces.get(model)
        return None if trace is None else trace.steps[0].rank

    def divergence(self, model: str) -> Divergence | None:
        """Where ``model`` first leaves the expected answer (teacher-forced)."""
        trace = self.expected_traces.get(model)
        return None if trace is None else divergence_from_trace(trace)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        return cls(
            verdict=str(d["verdict"]),
            prompt=d["prompt"],
            base_prompt=d.get("base_prompt"),
            expected=d.get("expected"),
            force=d.get("force"),
            check=str(d["check"]),
            runs=tuple(Run.from_dict(r) for r in d["runs"]),
            expected_traces={k: TokenTrace.from_dict(v) for k, v in d.get("expected_traces", {}).items()},
            case_id=d.get("case_id"),
            tags=tuple(d.get("tags", ())),
            models={str(k): str(v) for k, v in d.get("models", {}).items()},
            adapter=d.get("adapter"),
        )

    def __str__(self) -> str:
        from .render.text import diagnosis_text

        return diagnosis_text(self)

    def _repr_html_(self) -> str:
        from .render.card import diagnosis_html

        return diagnosis_html(self)


def verdict_of(passed: dict[str, bool]) -> str:
    """The verdict from which runs passed (missing runs count as failed)."""
    if passed.get("tuned"):
        return "ok"
    if passed.get("tuned_forced"):
        return "not_triggered"
    if passed.get("base") or passed.get("base_forced"):
        return "lost"
    return "never_had"


def resolve_check(check, expected: str | None) -> Check:
    if check is not None:
        return as_check(check)
    if expected is None:
        raise ValueError("diagnose needs check= or expected= to tell right from wrong")
    return contains(expected)


def _one_batch(base, tuned):
    """(lm, (tuned adapter, base adapter)) when both can share one batch, else None."""
    if base is tuned or (base.model is tuned.model and base.adapter_enabled == tuned.adapter_enabled):
        return tuned, (None, None)
    if base.model is tuned.model and tuned.adapter_enabled and base.adapter_enabled is False:
        active = tuned.active_adapter
        if active is not None:
            return tuned, (active, "__base__")
    return None


def diagnose(base, tuned, prompt, *, check=None, expected: str | None = None,
             force: str | None = None, base_prompt: str | None = None, max_new_tokens: int = 48,
             top_k: int = 5, system: str | None = None, case_id: str | None = None,
             tags: tuple[str, ...] = ()) -> Diagnosis:
    """Run the four runs and return the verdict with its evidence.

    Args:
        base, tuned: LMs (``probe.load_pair``).
        prompt: what the tuned model is asked (chat-rendered on a chat model).
        check: what "right" means (a ``probe.checks`` check, a callable ``str -> bool``, or a
            spec such as ``{"contains": "Paris"}``). Default: contains ``expected``.
        expected: the right answer; also scored teacher-forced under both models.
        force: the start of the answer to force (e.g. "```json\\n"). Without it the forced
            runs are skipped and ``not_triggered`` cannot be concluded.
        base_prompt: raw text for the base's free run to continue (the continuation test,
            e.g. "The capital of France is"); default: the prompt in the base's own format.
            The base's forced run gets the same input as the tuned forced run.
        max_new_tokens: length of each generation.

    ``expected`` is scored after ``prompt`` under both models (each in its own format), so
    P(expected) and its rank compare across the two.

    Raises:
        ValueError: no check and no expected answer; TypeError/ValueError from bad inputs.
        Whatever the check raises (``diagnose_many`` records it as that case's error).
    """
    the_check = resolve_check(check, expected)
    forces = [""] + ([force] if force else [])
    keys = [(m, f) for m in ("tuned", "base") for f in forces]

    def row(model: str, f: str, adapter: str | None) -> RowSpec:
        if model == "base" and not f and base_prompt is not None:  # the continuation test
            return RowSpec(base_prompt, "", True, None, adapter)
        return RowSpec(prompt, f, None, system, adapter)  # the same input for both models

    shared = _one_batch(base, tuned)
    if shared is not None:  # all runs in one batch (same weights; PEFT picks the adapter per row)
        lm, names = shared
        specs = [row(m, f, names[0] if m == "tuned" else names[1]) for m, f in keys]
        got = generate_rows(lm, specs, max_new_tokens=max_new_tokens, top_k=top_k, batch_size=len(specs))
    else:
        got = [t for m, lm in (("tuned", tuned), ("base", base))
               for t in generate_rows(lm, [row(m, f, None) for f in forces],
                                      max_new_tokens=max_new_tokens, top_k=top_k, batch_size=len(forces))]
    traces = dict(zip(keys, got))
    runs = []
    for model in ("tuned", "base"):
        for f in forces:
            trace = traces[(model, f)]
            result = the_check(trace.text)
            name = model + ("_forced" if f else "")
            runs.append(Run(name, model, f, trace, result.passed, result.reason))
    expected_traces = {}
    if expected:  # the same prompt under both models: the two numbers compare
        for model, lm in (("tuned", tuned), ("base", base)):
            expected_traces[model] = score(lm, prompt, expected, top_k=top_k, system=system)
    return Diagnosis(
        verdict=verdict_of({r.name: r.passed for r in runs}),
        prompt=prompt, base_prompt=base_prompt, expected=expected, force=force,
        check=the_check.name, runs=tuple(runs), expected_traces=expected_traces,
        case_id=case_id, tags=tuple(tags), models={"base": base.name, "tuned": tuned.name},
        adapter=tuned.active_adapter,
    )
