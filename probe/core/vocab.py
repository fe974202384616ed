"""Closed vocabularies: the few words probe's results use as values, as ``Literal`` types.

Each is the one place its words are listed: annotations use the type, and code that checks a
value uses ``words(T)`` (the tuple of its words), so the two cannot drift apart.

    >>> words(StopReason)
    ('eos', 'stop', 'length')
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Kind = Literal["score", "generate"]  # TokenTrace.kind: a scored target or a generation
StopReason = Literal["eos", "stop", "length"]  # why a generation ended
Verdict = Literal["ok", "not_triggered", "lost", "never_had", "uncertain"]  # diagnose()'s verdicts
Label = Literal["not_triggered", "lost", "never_had", "too_hard_for_size", "undertrained",
                "pattern_overfit"]  # bad-case labels (probe.labels)
Outcome = Literal["lost", "gained", "kept", "never"]  # a case from base to tuned (regression table)
ModelRole = Literal["base", "tuned", "model"]  # ModelInfo.role
OcclusionUnit = Literal["word", "token"]
OcclusionMode = Literal["remove", "replace"]
PatternKind = Literal["split", "high", "low", "gradual"]  # the shape of a sweep (sweeps.Pattern)
LensFigure = Literal["lines", "heatmap"]
ExplorerMode = Literal["score", "generate", "first divergence"]
AttributionMethod = Literal["gradient", "representation", "lexical"]  # probe.attribute's methods
AttributionQuery = Literal["contrast", "loss"]  # what probe.attribute asks of a case

# The per-row adapter name that runs a row of a mixed PEFT batch with no adapter (the base).
BaseAdapter = Literal["__base__"]
BASE_ADAPTER: Final[BaseAdapter] = "__base__"


def words(vocabulary) -> tuple[str, ...]:
    """The words of a ``Literal`` type, in order."""
    return get_args(vocabulary)
