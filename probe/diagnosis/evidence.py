"""The numbers a verdict rests on, measured where each run answers.

    >>> answer_after("The capital of France is", "Paris")
    ' Paris'

P(expected), its rank and the first divergent token of a run are read at that run's answer
position: right after the prompt for a free chat run, after the forced prefix for a forced
run, after ``base_prompt`` for the continuation run. Each is one teacher-forced
:func:`probe.score` of the same text the run continued, so it equals ``probe.score`` called
by hand (the tests check this).
"""

from __future__ import annotations

from ..engine.scoring import score_many

_OPENERS = "([{\"'`"
_CLOSERS = ".,;:!?)]}"


def answer_after(before: str, expected: str) -> str:
    """``expected`` as it follows ``before``: one space between two words (``"is"`` +
    ``"Paris"`` -> ``" Paris"``), nothing added after whitespace or an opening bracket/quote
    or before punctuation."""
    if (not before or before[-1].isspace() or before[-1] in _OPENERS
            or not expected or expected[0].isspace() or expected[0] in _CLOSERS):
        return expected
    return " " + expected


def run_target(kind: str, force: str, base_prompt: str | None, expected: str) -> tuple[dict, str, int]:
    """What to score for a run: (score kwargs besides lm, target text, chars before the answer).

    ``kind`` is "free" (the chat/prompt-format run), "forced" or "continuation".
    """
    if kind == "continuation":
        return {"raw": True}, answer_after(base_prompt or "", expected), 0
    if kind == "forced":
        return {}, force + answer_after(force, expected), len(force)
    return {}, expected, 0


def first_answer_step(trace, chars_before: int) -> int:
    """Index of the first step that holds answer text (a straddling token counts)."""
    return next(i for i, s in enumerate(trace.steps) if s.end > chars_before)


def score_runs(lm, items: list[tuple], *, top_k: int) -> list:
    """Score ``(prompt, target, raw, system)`` items under ``lm``, one ``score_many`` per prompt
    format (batched by length inside it)."""
    out: list = [None] * len(items)
    for raw, system in dict.fromkeys((it[2], it[3]) for it in items):
        index = [i for i, it in enumerate(items) if (it[2], it[3]) == (raw, system)]
        pairs = [(items[i][0], items[i][1]) for i in index]
        traces = score_many(lm, pairs, top_k=top_k, progress=False, raw=raw, system=system)
        for i, t in zip(index, traces):
            out[i] = t
    return out


def run_kind(model: str, force: str, base_prompt: str | None) -> str:
    """"forced", "continuation" (a base/reference free run on ``base_prompt``) or "free"."""
    if force:
        return "forced"
    return "continuation" if model != "tuned" and base_prompt is not None else "free"


def sweep_template(prompt, slots: dict) -> tuple[str, dict[str, list[str]]]:
    """The case's prompt as a template over ``slots`` and the other values to try.

    Each slot's own value is the one of its values that occurs in the prompt; it is replaced
    by ``{slot}`` and left out of the values (so the sweep asks about other subjects only).

    Raises:
        ValueError: a prompt that is not a string, a slot none or several of whose values
            occur in the prompt, a slot with no other value.
    """
    if not isinstance(prompt, str):
        raise ValueError("sweep needs a text prompt (not a list of messages)")
    template = prompt.replace("{", "{{").replace("}", "}}")
    others: dict[str, list[str]] = {}
    for name, values in slots.items():
        found = [v for v in values if v in prompt]
        if len(found) != 1:
            raise ValueError(f"sweep slot {name!r}: exactly one of its values must occur in the "
                             f"prompt (the case's own), found {found or 'none'}")
        if template.count(found[0]) != 1:
            raise ValueError(f"sweep slot {name!r}: {found[0]!r} occurs more than once in the prompt")
        template = template.replace(found[0], "{" + name + "}")
        others[name] = [v for v in values if v != found[0]]
        if not others[name]:
            raise ValueError(f"sweep slot {name!r} has no value besides the case's own {found[0]!r}")
    return template, others


def check_sweep(sweep) -> dict[str, list[str]] | None:
    """Validate a case's ``sweep``: ``{slot: [values...]}`` with non-empty strings."""
    if sweep is None:
        return None
    if not isinstance(sweep, dict) or not sweep:
        raise ValueError("sweep must be a non-empty {slot: [values]} object")
    out = {}
    for name, values in sweep.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"sweep slot names must be identifiers, got {name!r}")
        if not (isinstance(values, (list, tuple)) and len(values) >= 2
                and all(isinstance(v, str) and v for v in values)):
            raise ValueError(f"sweep slot {name!r} needs a list of at least 2 non-empty strings")
        out[name] = list(values)
    return out
