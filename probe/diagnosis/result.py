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

With ``samples=n`` each run is also sampled n times (seeded, ``temperature``): the greedy
continuation and the n samples of a run continue its one prefill (the cache rows are copied,
not recomputed) and the verdict rests on the pass rates, with ``uncertain`` when their 95%
intervals overlap. Rules, thresholds and the extra labels live in :mod:`probe.diagnosis.labels`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .checks import Check, as_check, default_check
from .divergence import _leaves_expected, divergence_from_trace, first_divergence
from .labels import VERDICTS, Label, Verdict, rests_on, summary, verdict_of  # noqa: F401
from .passrate import PassRate
from .divergence import Divergence
from ..engine.trace import TokenStep, TokenTrace, null_neg_inf
from ..engine.identical import warn_if_same
from ..engine.settings import BASE_ADAPTER
from ..overfit.sweep import Sweep
from ..core.registry import Headline, Parting, register
from ..render.case import diagnosis_section
from ..render.card import diagnosis_html
from ..render.text import diagnosis_text

EXPLANATIONS = {
    "ok": "The tuned model answers right on its own.",
    "not_triggered": "The tuned model answers wrong, but right once the start of the answer is "
    "forced: it has the skill and does not know it should use it here.",
    "lost": "The tuned model answers wrong even when forced, while the base model gets it "
    "right: fine-tuning removed it.",
    "never_had": "Neither the tuned nor the base model gets it right, forced or not: the "
    "pretrained model never had it.",
    "uncertain": "The sampled pass rates do not tell the runs apart (their 95% intervals "
    "overlap): more samples would decide.",
}


def sample_seed(seed: int, run: str, i: int) -> int:
    """The seed of sample ``i`` of run ``run``: the same whatever else is in the batch."""
    digest = hashlib.sha256(f"{seed}:{run}:{i}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class Run:
    """One generation of the diagnosis, what the check said of it, and the evidence."""

    name: str  # "tuned", "tuned_forced", "base", "base_forced", "reference"
    model: str  # "tuned" | "base" | "reference"
    force: str  # the forced prefix ("" for a free run)
    trace: TokenTrace  # the greedy generation
    passed: bool  # the greedy generation passed the check
    reason: str
    rate: PassRate | None = None  # of the samples (None: not sampled)
    sample_texts: tuple[str, ...] = ()
    sample_passed: tuple[bool, ...] = ()
    # ``expected`` teacher-forced where this run answers (see probe.evidence); its answer
    # starts at step ``expected_from`` (after the forced prefix for a forced run).
    expected_trace: TokenTrace | None = None
    expected_from: int = 0

    @property
    def text(self) -> str:
        return self.trace.text

    @property
    def answer_steps(self) -> tuple[TokenStep, ...]:
        return () if self.expected_trace is None else self.expected_trace.steps[self.expected_from :]

    @property
    def p_expected(self) -> float | None:
        """P(expected | what this run continued): the product over the answer's tokens."""
        steps = self.answer_steps
        return math.exp(sum(s.logprob for s in steps)) if steps else None

    @property
    def rank_expected(self) -> int | None:
        """Rank of the expected answer's first token at this run's answer position."""
        steps = self.answer_steps
        return steps[0].rank if steps else None

    @property
    def divergent_step(self) -> TokenStep | None:
        """The first answer token that is not the model's top choice (None: none)."""
        return next((s for s in self.answer_steps if s.rank > 1), None)

    def to_dict(self) -> dict:
        return null_neg_inf(asdict(self))  # strict JSON: a masked token's -inf as null

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        rate = d.get("rate")
        exp = d.get("expected_trace")
        return cls(str(d["name"]), str(d["model"]), str(d["force"]), TokenTrace.from_dict(d["trace"]),
                   bool(d["passed"]), str(d["reason"]),
                   rate=None if rate is None else PassRate.from_dict(rate),
                   sample_texts=tuple(str(t) for t in d.get("sample_texts", ())),
                   sample_passed=tuple(bool(p) for p in d.get("sample_passed", ())),
                   expected_trace=None if exp is None else TokenTrace.from_dict(exp),
                   expected_from=int(d.get("expected_from", 0)))


@dataclass(frozen=True)
class Diagnosis:
    """The verdict and all its evidence."""

    verdict: Verdict  # see probe.labels: VERDICTS, or "uncertain" (sampled, rates too close)
    prompt: Any  # str or list of messages, as given
    base_prompt: str | None  # raw text the base continued (None: the prompt in its format)
    expected: str | None
    force: str | None
    check: str  # the check's name, e.g. "answer('Paris')" (the default) or "contains('Paris')"
    runs: tuple[Run, ...]
    # Teacher-forced ``expected`` right after ``prompt`` under each model (same input).
    expected_traces: dict[str, TokenTrace] = field(default_factory=dict)
    case_id: str | None = None
    tags: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)  # "base"/"tuned"/"reference" -> name
    adapter: str | None = None  # the tuned model's active PEFT adapter, if any
    leaning: str = ""  # what the rates point to (= verdict unless "uncertain")
    labels: tuple[Label, ...] = ()  # probe.labels.RULES that hold
    samples: int = 0  # samples per run (0: greedy only)
    temperature: float | None = None
    seed: int | None = None
    sweep: Sweep | None = None  # the pattern-overfit sweep of the tuned model's wrong answer
    # The check as a spec (probe.checks.as_check reads it back): {"answer": "Paris"}, ...; None
    # for a Python callable, and in files saved before case schema 3 (the name says which).
    check_spec: Any = None

    def __post_init__(self):
        if not self.leaning:
            object.__setattr__(self, "leaning", self.verdict)

    @property
    def explanation(self) -> str:
        return EXPLANATIONS.get(self.verdict, self.verdict)

    @property
    def summary(self) -> str:
        """``lost: base 9/10, tuned 0/10``: the verdict and the numbers it rests on."""
        return summary(self.verdict, self.leaning, {r.name: r for r in self.runs})

    @property
    def rests_on(self) -> tuple[str, ...]:
        """The names of the runs the verdict rests on, as :attr:`summary` names them
        (``("base_forced", "tuned")`` for ``lost: base forced 9/10, tuned 0/10``)."""
        return tuple(r.name for r in rests_on(self.leaning, {r.name: r for r in self.runs}))

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

    def expected_gain(self) -> float | None:
        """log P(expected) tuned - base after the prompt, in nats (None: no expected)."""
        t, b = self.expected_traces.get("tuned"), self.expected_traces.get("base")
        return None if t is None or b is None else t.total_logprob - b.total_logprob

    def overfit_share(self) -> float | None:
        """Share of the swept values for which the wrong answer stays greedy (None: no sweep)."""
        if self.sweep is None or not self.sweep.rows:
            return None
        return sum(r.watch_is_greedy for r in self.sweep.rows) / len(self.sweep.rows)

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("runs", "expected_traces", "sweep")}
        d["tags"], d["labels"] = list(self.tags), list(self.labels)
        d["models"] = dict(self.models)
        d["runs"] = [r.to_dict() for r in self.runs]
        d["expected_traces"] = {k: t.to_dict() for k, t in self.expected_traces.items()}
        d["sweep"] = None if self.sweep is None else self.sweep.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        sweep = d.get("sweep")
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
            leaning=str(d.get("leaning") or d["verdict"]),
            labels=tuple(str(x) for x in d.get("labels", ())),
            samples=int(d.get("samples", 0)),
            temperature=d.get("temperature"),
            seed=d.get("seed"),
            sweep=None if sweep is None else Sweep.from_dict(sweep),
            check_spec=d.get("check_spec"),
        )

    def __str__(self) -> str:
        return diagnosis_text(self)

    def _repr_html_(self) -> str:
        return diagnosis_html(self)


def spec_of(check: Check) -> Any:
    """``check.spec`` if it is plain JSON data (what a case file can hold), else None."""
    import json

    try:
        json.dumps(check.spec, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return check.spec


def resolve_check(check, expected: str | None) -> Check:
    """The check a case runs: ``check`` if given (``"answer"`` / ``"exact"`` read ``expected``),
    else ``expected``'s default, :func:`probe.checks.answer` (case- and Unicode-insensitive,
    whole words)."""
    if check is not None:
        return as_check(check, expected)
    if expected is None:
        raise ValueError("diagnose needs check= or expected= to tell right from wrong")
    return default_check(expected)


def check_pair_once(base, tuned) -> None:
    """Warn (IdenticalModelsWarning) the first time a pair is diagnosed if tuned == base in
    logits: an adapter that never applied makes every verdict read "never_had"."""
    if base is tuned:
        return
    key = ("same-checked", id(base.model), base.adapter_enabled, tuned.active_adapter)
    if key not in tuned._aux:
        tuned._aux[key] = warn_if_same(base, tuned, "diagnose")


def _rows_reach_lora(lm) -> bool:
    """Whether every LoRA layer sees inputs with one row per sequence (PEFT's per-row adapters
    need it; OPT's MLP and MoE experts see flattened tokens). Checked once, on 2 x 3 tokens."""
    model = lm.model
    cached = getattr(model, "_probe_rows_reach_lora", None)
    if cached is None:
        import torch
        from peft.tuners.lora import LoraLayer

        seen = []
        hooks = [m.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
                 for m in model.modules() if isinstance(m, LoraLayer)]
        try:
            ids = torch.full((2, 3), lm.pad_id, device=lm.device)  # 2 rows of 3: flattened would be 6
            with torch.no_grad():
                model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
        finally:
            for h in hooks:
                h.remove()
        cached = model._probe_rows_reach_lora = bool(seen) and all(n == 2 for n in seen)
    return cached


def _one_batch(base, tuned):
    """(lm, (tuned adapter, base adapter)) when both can share one batch, else None."""
    if base is tuned or (base.model is tuned.model and base.adapter_enabled == tuned.adapter_enabled):
        return tuned, (None, None)
    if base.model is tuned.model and tuned.adapter_enabled and base.adapter_enabled is False:
        active = tuned.active_adapter
        if active is not None and _rows_reach_lora(tuned):
            return tuned, (active, BASE_ADAPTER)
    return None


def _diagnosis_inputs(d: Diagnosis) -> dict:
    return {"prompt": d.prompt, "expected": d.expected, "force": d.force, "base_prompt": d.base_prompt,
            "check": d.check, "check_spec": d.check_spec, "verdict": d.verdict, "labels": tuple(d.labels), "tags": d.tags,
            "title": d.case_id, "model_names": d.models}


def diagnosis_headline(d: Diagnosis) -> Headline:
    """Where the tuned model goes wrong: against the expected answer when there is one, else
    where its free generation parts from the base's; and P(expected) under both models."""
    div = d.divergence("tuned")
    if div is not None:
        where = _leaves_expected(div)
    else:
        part = first_divergence(d.run("base").trace, d.run("tuned").trace)
        a, b = part.step_a, part.step_b
        where = Parting("base", part.diverged, None if a is None else a.text, None if b is None else b.text)
    return Headline(verdict=d.verdict, where=where, p_base=d.p_expected("base"), p_tuned=d.p_expected("tuned"))


register(Diagnosis, default_name="diagnosis", inputs=_diagnosis_inputs, section=diagnosis_section,
         headline=diagnosis_headline)
