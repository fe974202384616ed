"""probe's own result types in the registry: the names their case files use, listed once.

The saved names (``"TokenTrace"``, ``"Diagnosis"``, ...) are the case file format: they are
kept here side by side so that none changes by accident. A new result type registers itself
in its own module instead (see :mod:`probe.registry`).
"""

from __future__ import annotations

from .comparison import Comparison
from .data import DataCounts
from .diagnosis import Diagnosis
from .divergence import first_divergence
from .lens import LayerLens
from .occlusion import Occlusion
from .registry import Headline, Parting, register
from .render import case as views
from .results import Divergence, TokenTrace, TraceDivergence
from .sweeps import Sweep


def _diagnosis_inputs(d: Diagnosis) -> dict:
    return {"prompt": d.prompt, "expected": d.expected, "force": d.force, "base_prompt": d.base_prompt,
            "check": d.check, "verdict": d.verdict, "labels": tuple(d.labels), "tags": d.tags,
            "title": d.case_id, "model_names": d.models}


def _trace_inputs(t: TokenTrace) -> dict:
    if t.kind == "score":
        return {"prompt": t.prompt, "expected": t.text}
    return {"prompt": t.prompt, "force": t.forced_text or None}


def _leaves_expected(div: Divergence) -> Parting:
    if not div.diverged:
        return Parting("expected", False)
    preferred = div.preferred
    return Parting("expected", True, div.step.text, None if preferred is None else preferred.text)


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


register(TokenTrace, default_name="trace", inputs=_trace_inputs, section=views.trace_section)
register(Divergence, default_name="divergence",
         inputs=lambda r: {"prompt": r.trace.prompt, "expected": r.reference},
         section=views.divergence_section, headline=lambda r: Headline(where=_leaves_expected(r)))
register(TraceDivergence, default_name="divergence", section=views.trace_divergence_section)
register(Comparison, default_name="comparison",
         inputs=lambda r: {"prompt": r.tuned.prompt, "expected": r.target}, section=views.comparison_section)
register(Diagnosis, default_name="diagnosis", inputs=_diagnosis_inputs, section=views.diagnosis_section,
         headline=diagnosis_headline)
register(Sweep, default_name="sweep", inputs=lambda r: {"prompt": r.template})
register(Occlusion, default_name="occlusion", inputs=lambda r: {"prompt": r.prompt, "expected": r.target})
register(LayerLens, default_name="layers", inputs=lambda r: {"prompt": r.prompt, "expected": r.target})
register(DataCounts, default_name="data")
