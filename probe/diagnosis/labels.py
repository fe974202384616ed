"""Verdicts and bad-case labels: every rule and threshold of the diagnosis, in one place.

The verdict comes from which runs answer right (see :mod:`probe.diagnosis`). A run "answers
right" when its greedy generation passes the check, or, when it was sampled, when at least
``PASS_RATE`` of its samples pass. With samples the verdict also says how sure it is: it is
``uncertain`` when the 95% Wilson intervals of the two runs it contrasts overlap (or, for
``ok`` and ``never_had``, which rest on one side only, when the deciding interval holds
``PASS_RATE``); ``leaning`` keeps what the rates point to.

Labels (a case may carry several) name what kind of bad case it is; ``RULES`` says each rule
in words (the README table is this dict).
"""

from __future__ import annotations

import math

from ..core.vocab import Label, Verdict, words  # noqa: F401  (re-exported)

PASS_RATE = 0.5  # a sampled run answers right when at least this share of its samples pass
UNDERTRAINED_GAIN = math.log(2)  # nats: tuned P(expected) at least doubled from the base
OVERFIT_SHARE = 0.5  # the wrong answer is greedy for at least this share of the swept values

ALL_VERDICTS: tuple[str, ...] = words(Verdict)  # the four outcomes, then "uncertain" (sampled runs)
VERDICTS: tuple[str, ...] = ALL_VERDICTS[:4]  # the four outcomes of the decision table

RULES: dict[str, str] = {
    "not_triggered": "tuned free run wrong, tuned forced run right: it has the skill, not the cue",
    "lost": "both tuned runs wrong, a base run right: fine-tuning removed it",
    "never_had": "all four runs wrong, and no reference= model, or it is wrong too",
    "too_hard_for_size": "all four runs wrong, but the larger reference= model (same family) "
    "answers the base's input right",
    "undertrained": "not ok, the tuned model leaves the expected answer (first divergent token "
    "rank > 1), yet log P(expected) tuned - base >= log 2 after the prompt: fine-tuning moved it "
    "up, not to the top",
    "pattern_overfit": "not ok, and the tuned model's wrong answer (its preferred text where it "
    "leaves the expected one) stays its greedy answer for at least half of the swept slot values "
    "(the case's 'sweep')",
}


def is_right(run) -> bool:
    """A run answers right: most of its samples pass (sampled), or its greedy run passes."""
    rate = getattr(run, "rate", None)
    return rate.rate >= PASS_RATE if rate is not None else bool(run.passed)


def verdict_of(passed: dict[str, bool]) -> str:
    """The verdict from which runs answered right (missing runs count as wrong)."""
    if passed.get("tuned"):
        return "ok"
    if passed.get("tuned_forced"):
        return "not_triggered"
    if passed.get("base") or passed.get("base_forced"):
        return "lost"
    return "never_had"


def _best(runs: dict, names: tuple[str, ...]):
    """The run among ``names`` with the highest pass rate (greedy pass breaks ties)."""
    have = [runs[n] for n in names if n in runs]
    key = lambda r: (r.rate.rate if r.rate is not None else float(r.passed), r.passed)  # noqa: E731
    return max(have, key=key) if have else None


def contrast(leaning: str, runs: dict) -> tuple:
    """The runs a verdict rests on: (the run that should be right, the run that should be
    wrong); either may be None (``ok`` has no wrong side, ``never_had`` no right side)."""
    if leaning == "ok":
        return runs.get("tuned"), None
    if leaning == "not_triggered":
        return runs.get("tuned_forced"), runs.get("tuned")
    if leaning == "lost":
        return _best(runs, ("base", "base_forced")), _best(runs, ("tuned", "tuned_forced"))
    everything = tuple(n for n in runs if n != "reference")
    return None, _best(runs, everything)


def decide(runs: dict) -> tuple[str, str]:
    """(verdict, leaning) from ``{run name: run}`` (runs have ``passed`` and ``rate``)."""
    leaning = verdict_of({name: is_right(r) for name, r in runs.items()})
    right, wrong = contrast(leaning, runs)
    sure = True
    if right is not None and right.rate is not None:
        if wrong is not None and wrong.rate is not None:
            sure = not right.rate.overlaps(wrong.rate)
        elif wrong is None:
            sure = right.rate.low > PASS_RATE
    elif wrong is not None and wrong.rate is not None:  # never_had: even the best run is wrong
        sure = wrong.rate.high < PASS_RATE
    return (leaning if sure else "uncertain"), leaning


def _side(run) -> str:
    """``base forced 6/10``: the run named as it is (the best of a model's two runs may be its
    forced one; a bare "base" would then point at the wrong column)."""
    label = run.name.replace("_", " ")
    shown = str(run.rate) if run.rate is not None else ("pass" if run.passed else "fail")
    return f"{label} {shown}"


def rests_on(leaning: str, runs: dict) -> list:
    """The runs a verdict's summary names, in its order: ``ok`` the tuned run;
    ``not_triggered`` tuned forced, then tuned; otherwise the best run of each model (base,
    then tuned); then the reference run, if any. Missing runs are left out."""
    right, wrong = contrast(leaning, runs)
    if leaning == "ok":
        sides = [right]
    elif leaning == "not_triggered":
        sides = [right, wrong]
    else:  # lost, never_had: the best run of each model
        sides = [_best(runs, ("base", "base_forced")), _best(runs, ("tuned", "tuned_forced"))]
    sides.append(runs.get("reference"))
    return [r for r in sides if r is not None]


def summary(verdict: str, leaning: str, runs: dict) -> str:
    """``lost: base 9/10, tuned 0/10``: the verdict and the numbers it rests on."""
    sides = [_side(r) for r in rests_on(leaning, runs)]
    head = verdict if verdict == leaning else f"{verdict} (leans {leaning})"
    greedy = all(r.rate is None for r in runs.values())
    return f"{head}: {', '.join(sides)}" + (" (greedy)" if greedy else "")


def labels_of(d) -> tuple[str, ...]:
    """The labels a diagnosis earns, by ``RULES`` (in that order)."""
    out = []
    leaning = d.leaning
    if leaning in ("not_triggered", "lost"):
        out.append(leaning)
    if leaning == "never_had":
        ref = d.run("reference")
        out.append("too_hard_for_size" if ref is not None and is_right(ref) else "never_had")
    if leaning != "ok":
        gain = d.expected_gain()
        div = d.divergence("tuned")
        if gain is not None and div is not None and div.diverged and gain >= UNDERTRAINED_GAIN:
            out.append("undertrained")
        share = d.overfit_share()
        if share is not None and share >= OVERFIT_SHARE:
            out.append("pattern_overfit")
    return tuple(out)
