"""CI gates the commands share: which results fail a run, why, and as JUnit testcases.

``probe diagnose --fail-on lost,never_had``: a case fails when its verdict or one of its labels
is named. ``probe shift --fail-on-lost N``: a tag (a row of the regression table, "all"
included) fails when it loses more than N cases. A failing gate exits with :data:`GATE_FAILED`
(3); ``--junit FILE`` writes the same decisions with :func:`probe.core.junit.write_junit`.
"""

from __future__ import annotations

from ..core.vocab import Label, Verdict, words
from ..diagnosis.failure import FailedCase
from .common import InputError

GATE_WORDS = tuple(dict.fromkeys([*words(Verdict), *words(Label)]))
GATE_FAILED = 3  # the exit status when a gate fails


def parse_fail_on(text: str | None) -> frozenset[str]:
    """``"lost,never_had"`` -> its words, each a verdict or a label (InputError naming a bad one)."""
    if text is None:
        return frozenset()
    chosen = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in chosen if w not in GATE_WORDS]
    if unknown or not chosen:
        raise InputError(f"--fail-on: unknown verdict or label {', '.join(map(repr, unknown)) or repr(text)}; "
                         f"choose from {', '.join(GATE_WORDS)}")
    return frozenset(chosen)


def gate_message(d, fail_on: frozenset[str]) -> str | None:
    """Why ``--fail-on`` fails diagnosis ``d``: its verdict and evidence line; None if it passes."""
    hit = [w for w in (d.verdict, *d.labels) if w in fail_on]
    if not hit:
        return None
    tuned = d.run("tuned")
    evidence = f"{d.summary}; tuned: {tuned.reason}" if tuned is not None else d.summary
    labels = f" [labels: {', '.join(d.labels)}]" if d.labels else ""
    return f"{evidence}{labels} (check {d.check}; --fail-on {','.join(sorted(fail_on))})"


def diagnosis_rows(results, fail_on: frozenset[str], classname: str) -> list[tuple[str, str, str | None]]:
    """One JUnit testcase per case: failed by the gate, or by the error that kept it from running."""
    rows = []
    for r in results:
        if isinstance(r, FailedCase):
            rows.append((r.id, classname, f"error: {r}"))
        else:
            rows.append((r.case_id or "case", classname, gate_message(r, fail_on)))
    return rows


def lost_rows(regression, max_lost: int | None, classname: str) -> list[tuple[str, str, str | None]]:
    """One JUnit testcase per tag of the regression table ("all" last): failed when the tag
    loses more than ``max_lost`` cases (None: no gate, nothing fails)."""
    rows = []
    for row in regression.table():
        message = None
        if max_lost is not None and row["lost"] > max_lost:
            ids = regression.cell(row["tag"], "lost")
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            message = (f"tag {row['tag']}: {row['lost']} of {row['n']} cases lost (more than {max_lost}); "
                       f"kept {row['kept']}, gained {row['gained']}, never {row['never']}; lost: {shown}")
        rows.append((row["tag"], classname, message))
    return rows
