"""How deep is the damage? The adapter's strength from 0 (the base) to 1 (the tuned model) and on.

    >>> s = probe.strength((base, tuned), {"prompt": "What is the capital of Japan?",
    ...                                    "expected": "Tokyo", "force": "The capital of Japan is"})
    >>> s.flip                      # (0.5, 0.75): right at lambda 0.5, wrong from 0.75
    >>> [(p.scale, p.answer, p.verdict) for p in s.points]
    >>> book = probe.Casebook("bad-cases/")
    >>> many = probe.strength_many((base, tuned), book.filter(verdict="lost", tag="capitals"))

At each lambda every LoRA layer of the adapter adds ``lambda * scaling * B(A(x))`` instead of
``scaling * B(A(x))`` (peft's ``scaling``, ``lora_alpha / r``, multiplied in place on the one
set of weights and restored on exit, even on error). lambda = 0 adds an exact zero: the base
model; lambda = 1 multiplies by 1.0: the tuned model, both to the bit. Each lambda records
P(expected) and P(wrong answer) right after the prompt (``probe.score``), the tuned model's
greedy answer, whether it passes the case's check, and the verdict ``probe.diagnose`` gives
(base, tuned at lambda): the base's runs do not change with lambda, so they run once (one
diagnose at lambda 1, which also names the wrong answer), and each lambda runs the tuned
model free (and forced, when the free answer fails and the case forces a prefix). ``flip`` is where the greedy answer changes from right
to wrong (or back) between two neighbouring lambdas; ``crossing`` is where log P(expected) and
log P(wrong) cross, linearly interpolated between them: whether a weaker merge (lambda < 1)
saves the case, and with how much margin.

Only LoRA adapters scale this way: DoRA (its magnitude renormalises the sum), a merged adapter
(already in the weights) and ``modules_to_save`` (whole trained copies of a module) are refused
with the reason.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

from ..core.registry import register
from ..diagnosis.result import check_pair_once, resolve_check, spec_of
from ..diagnosis.run import CaseSpec, diagnose, spec_from_dict
from ..diagnosis.labels import verdict_of
from ..engine.generation import generate
from ..engine.scoring import score
from ..engine.trace import null_neg_inf
from ..render.strength import (strength_body, strength_html, strength_text, strengths_body, strengths_html,
                               strengths_text)

SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)


def _lora_layers(lm, adapter: str) -> list:
    """The LoRA layers of ``adapter`` on ``lm``'s model; ValueError where scaling them would not
    scale the adapter's contribution (no adapter, DoRA, merged, modules_to_save)."""
    model = lm.model
    config = getattr(model, "peft_config", {}).get(adapter)
    if config is None:
        raise ValueError(f"strength needs a LoRA pair (probe.load_pair(base, adapter=...)); the tuned "
                         f"model has no adapter named {adapter!r} (loaded: {lm.adapters})")
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and adapter in m.scaling]
    if not layers:
        raise ValueError(f"adapter {adapter!r} is not a LoRA adapter ({type(config).__name__}): "
                         "only LoRA's contribution scales by lambda")
    if any(m.use_dora.get(adapter, False) for m in layers):
        raise ValueError(f"adapter {adapter!r} uses DoRA: its magnitude vector renormalises W + "
                         "lambda*BA, so lambda = 0 is not the base model")
    if any(getattr(m, "merged", False) for m in layers):
        raise ValueError(f"adapter {adapter!r} is merged into the weights: unmerge it (or load it "
                         "unmerged) to scale it")
    if getattr(config, "modules_to_save", None):
        raise ValueError(f"adapter {adapter!r} saves whole modules ({sorted(config.modules_to_save)}): "
                         "those are trained copies, not a low-rank update, and do not scale")
    return layers


@contextlib.contextmanager
def scaled_adapter(lm, scale: float, adapter: str | None = None):
    """Run ``lm``'s LoRA ``adapter`` (default: the active one) at ``scale`` times its trained
    strength, in place; every layer's scaling is restored on exit, whatever happened.

    Raises:
        ValueError: not a finite number, or an adapter that does not scale (see the module doc).
    """
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"an adapter scale must be a finite number, got {scale!r}")
    name = adapter or lm.active_adapter
    if name is None:
        raise ValueError("strength needs the tuned side of a LoRA pair (its adapter enabled)")
    layers = _lora_layers(lm, name)
    saved = [(m, m.scaling[name]) for m in layers]
    try:
        for m, s in saved:
            m.scaling[name] = s * scale
        yield
    finally:
        for m, s in saved:
            m.scaling[name] = s


@dataclass(frozen=True)
class StrengthPoint:
    """The tuned model at one lambda."""

    scale: float  # lambda: 0 the base, 1 the tuned model
    logp_expected: float  # log P(expected | prompt), summed over its tokens
    logp_wrong: float | None  # log P(wrong answer | prompt) (None: no wrong answer)
    answer: str  # the greedy answer (the tuned run of diagnose at this lambda)
    passed: bool  # the answer passes the case's check
    reason: str  # the check's reason
    verdict: str  # diagnose's verdict of (base, tuned at lambda)

    @property
    def p_expected(self) -> float:
        return math.exp(self.logp_expected)

    @property
    def p_wrong(self) -> float | None:
        return None if self.logp_wrong is None else math.exp(self.logp_wrong)

    def to_dict(self) -> dict:
        return null_neg_inf(dict(self.__dict__))

    @classmethod
    def from_dict(cls, d: dict) -> "StrengthPoint":
        lw = d.get("logp_wrong")
        le = d["logp_expected"]
        return cls(scale=float(d["scale"]), logp_expected=-math.inf if le is None else float(le),
                   logp_wrong=None if lw is None else float(lw), answer=str(d["answer"]),
                   passed=bool(d["passed"]), reason=str(d.get("reason", "")), verdict=str(d["verdict"]))


@dataclass(frozen=True)
class Strength:
    """A case's answer, probabilities and verdict over the adapter's strength lambda."""

    prompt: Any
    expected: str
    wrong: str | None  # the wrong answer whose probability is followed
    check: str  # the check's name
    points: tuple[StrengthPoint, ...]  # by increasing lambda
    check_spec: Any = None
    case_id: str | None = None
    adapter: str | None = None
    models: dict[str, str] = field(default_factory=dict)

    def point(self, scale: float) -> StrengthPoint | None:
        return next((p for p in self.points if p.scale == scale), None)

    @property
    def flip(self) -> tuple[float, float] | None:
        """(last lambda before, first lambda after) the greedy answer changes from passing the
        check to failing it or back, the first such change from lambda's low end; None: none."""
        for a, b in zip(self.points, self.points[1:]):
            if a.passed != b.passed:
                return a.scale, b.scale
        return None

    @property
    def crossing(self) -> float | None:
        """The lambda where log P(expected) = log P(wrong), interpolated linearly between the
        two neighbouring lambdas where the sign of their difference first changes; None: it
        never changes (or no wrong answer, or a probability is 0)."""
        margins = [(p.scale, p.logp_expected - p.logp_wrong) for p in self.points
                   if p.logp_wrong is not None and math.isfinite(p.logp_expected) and math.isfinite(p.logp_wrong)]
        for (x0, m0), (x1, m1) in zip(margins, margins[1:]):
            if m0 == 0:
                return x0
            if (m0 > 0) != (m1 > 0) or m1 == 0:
                return x0 + (x1 - x0) * m0 / (m0 - m1)
        return None

    def to_dict(self) -> dict:
        return {"prompt": self.prompt, "expected": self.expected, "wrong": self.wrong, "check": self.check,
                "check_spec": self.check_spec, "case_id": self.case_id, "adapter": self.adapter,
                "models": dict(self.models), "points": [p.to_dict() for p in self.points]}

    @classmethod
    def from_dict(cls, d: dict) -> "Strength":
        return cls(prompt=d["prompt"], expected=str(d["expected"]), wrong=d.get("wrong"),
                   check=str(d["check"]), points=tuple(StrengthPoint.from_dict(p) for p in d["points"]),
                   check_spec=d.get("check_spec"), case_id=d.get("case_id"), adapter=d.get("adapter"),
                   models={str(k): str(v) for k, v in d.get("models", {}).items()})

    def __str__(self) -> str:
        return strength_text(self)

    def _repr_html_(self) -> str:
        return strength_html(self)


@dataclass(frozen=True)
class Strengths:
    """The strength curves of several cases (a casebook cell), and the cases that failed."""

    items: tuple[Strength, ...]
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"items": [s.to_dict() for s in self.items], "errors": list(self.errors)}

    @classmethod
    def from_dict(cls, d: dict) -> "Strengths":
        return cls(tuple(Strength.from_dict(s) for s in d["items"]), tuple(str(e) for e in d.get("errors", ())))

    def __str__(self) -> str:
        return strengths_text(self)

    def _repr_html_(self) -> str:
        return strengths_html(self)


def _as_spec(case) -> CaseSpec:
    """A case's inputs from a case file line (dict), a CaseSpec, or a saved result that says
    them (a Diagnosis, a probe.Case: prompt, expected, check_spec, force, base_prompt)."""
    if isinstance(case, CaseSpec):
        return case
    if isinstance(case, dict):
        return spec_from_dict(case, "case")
    prompt, expected = getattr(case, "prompt", None), getattr(case, "expected", None)
    if prompt is None:
        raise TypeError(f"strength takes a case (a case file line as a dict, a CaseSpec, a Diagnosis "
                        f"or a probe.Case), got {type(case).__name__}")
    spec, name = getattr(case, "check_spec", None), getattr(case, "check", None)
    if spec is None and name is not None and expected and name != resolve_check(None, expected).name:
        raise ValueError(f"case {getattr(case, 'case_id', None) or getattr(case, 'id', '?')}: its check "
                         f"{name} was not saved as data (a file from before case schema 3); pass the "
                         "case as a dict with its check")
    case_id = getattr(case, "case_id", None) or getattr(case, "id", None) or "case"
    return CaseSpec(id=str(case_id), prompt=prompt, expected=expected, check=spec,
                    force=getattr(case, "force", None), base_prompt=getattr(case, "base_prompt", None),
                    tags=tuple(getattr(case, "tags", ())), adapter=getattr(case, "adapter", None))


def _first_line(text: str) -> str | None:
    line = text.split("\n", 1)[0].rstrip()
    return line or None


def _point(tuned, adapter, scale, spec, check, follow, base_passed, max_new_tokens) -> StrengthPoint:
    """The tuned model at ``scale``: its greedy answer (and, when that fails, the forced one,
    for the verdict), log P(expected) and log P(wrong) right after the prompt."""
    with scaled_adapter(tuned, scale, adapter):
        free = generate(tuned, spec.prompt, max_new_tokens=max_new_tokens, top_k=1)
        result = check(free.text)
        passed = {"tuned": result.passed, **base_passed}
        if not result.passed and spec.force:
            forced = generate(tuned, spec.prompt, force=spec.force, max_new_tokens=max_new_tokens, top_k=1)
            passed["tuned_forced"] = check(forced.text).passed
        logp = score(tuned, spec.prompt, spec.expected, top_k=1).total_logprob
        logp_wrong = None if follow is None else score(tuned, spec.prompt, follow, top_k=1).total_logprob
    return StrengthPoint(scale=scale, logp_expected=logp, logp_wrong=logp_wrong, answer=free.text,
                         passed=result.passed, reason=result.reason, verdict=verdict_of(passed))


def strength(pair, case, scales=SCALES, *, wrong: str | None = None, max_new_tokens: int = 24) -> Strength:
    """The case's answer over the LoRA adapter's strength lambda (see the module doc).

    Args:
        pair: ``(base, tuned)`` from ``probe.load_pair(base, adapter=...)``: one set of weights.
        case: a case file line (dict), a CaseSpec, a Diagnosis or a probe.Case, with ``expected``
            (its ``adapter``, if it names one, is the one scaled).
        scales: the lambdas (sorted; 0 is the base, 1 the tuned model, > 1 amplified).
        wrong: the wrong answer to follow (default: the tuned model's greedy answer at lambda 1,
            its first line, when it fails the check; None if it passes).
        max_new_tokens: length of each greedy answer.

    Raises:
        ValueError: not a LoRA pair, an adapter that does not scale, a case without ``expected``,
            no scales or one that is not finite.
    """
    base, tuned = pair
    spec = _as_spec(case)
    if not spec.expected:
        raise ValueError(f"case {spec.id}: strength follows P(expected): the case needs 'expected'")
    grid = sorted({float(s) for s in scales})
    if not grid or not all(math.isfinite(s) for s in grid):
        raise ValueError(f"scales must be finite numbers, at least one, got {scales!r}")
    if base.model is not tuned.model or base.adapter_enabled is not False or not tuned.adapter_enabled:
        raise ValueError("strength needs a LoRA pair on one set of weights: probe.load_pair(base, adapter=...)")
    check = resolve_check(spec.check, spec.expected)
    saved = getattr(tuned.model, "active_adapter", None)
    try:
        if spec.adapter is not None and spec.adapter != tuned.active_adapter:
            tuned.use_adapter(spec.adapter)
        adapter = tuned.active_adapter
        _lora_layers(tuned, adapter)  # refuse before anything runs
        check_pair_once(base, tuned)  # at lambda 1: an adapter that never applied is named once

        # The base's runs do not depend on lambda: one diagnose at lambda 1 gives them (and the
        # tuned model's wrong answer); each lambda then runs the tuned side alone.
        d1 = diagnose(base, tuned, spec.prompt, check=check, expected=spec.expected, force=spec.force,
                      base_prompt=spec.base_prompt, max_new_tokens=max_new_tokens, top_k=1, case_id=spec.id)
        base_passed = {r.name: r.passed for r in d1.runs if r.model == "base"}
        follow = wrong
        if follow is None:
            follow = None if d1.run("tuned").passed else _first_line(d1.run("tuned").text)
        points = [_point(tuned, adapter, scale, spec, check, follow, base_passed, max_new_tokens)
                  for scale in grid]
    finally:
        if saved is not None and getattr(tuned.model, "active_adapter", None) != saved:
            tuned.model.set_adapter(saved)
    return Strength(prompt=spec.prompt, expected=spec.expected, wrong=follow, check=check.name,
                    check_spec=spec_of(check), case_id=spec.id, adapter=adapter, points=tuple(points),
                    models={"base": base.name, "tuned": tuned.name})


def strength_many(pair, cases, scales=SCALES, **kwargs) -> Strengths:
    """:func:`strength` of each case (a casebook cell: ``book.filter(verdict=..., tag=...)``, a
    case file's lines, or results); a case that cannot run is named in ``errors``, the others run."""
    items, errors = [], []
    for i, case in enumerate(cases):
        try:
            items.append(strength(pair, case, scales, **kwargs))
        except (TypeError, ValueError) as err:
            name = getattr(case, "id", None) or getattr(case, "case_id", None) or (
                case.get("id") if isinstance(case, dict) else None) or f"case-{i}"
            errors.append(f"case {name}: {err}")
    return Strengths(tuple(items), tuple(errors))


def _inputs(s: Strength) -> dict:
    return {"prompt": s.prompt, "expected": s.expected, "check": s.check, "check_spec": s.check_spec,
            "title": s.case_id, "model_names": s.models}


register(Strength, default_name="strength", inputs=_inputs, section=strength_body)
register(Strengths, default_name="strengths", section=strengths_body)
