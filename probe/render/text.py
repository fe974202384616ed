"""Plain-text views of results (what ``str(result)`` prints). Pure: no computation here.

Sentences that the HTML views say too come from :mod:`probe.render.phrases`; table rows of
a diagnosis come from its :class:`probe.core.registry.Headline`.
"""

from __future__ import annotations

from ..core.registry import type_of
from .safe import encodable
from .width import ELLIPSIS, fit, pad, quoted, visible, width, wrap
from .phrases import (as_text, p_text, clip, comparison_phrase, divergence_phrase, expected_phrase, headline_cells,
    parting_phrase, show, trace_facts)


def _alts(step, n: int = 3) -> str:
    return ", ".join(f"{show(a.text)} {a.prob:.3f}" for a in step.top[:n])


def trace_text(trace) -> str:
    head = f"TokenTrace[{trace.kind}] {as_text(trace_facts(trace))} - {trace.model}"
    lines = [head, f"  {'#':>3} {'token':<18} {'prob':>7} {'rank':>6}  top alternatives"]
    for s in trace.steps:
        flags = ("F" if s.forced else "") + ("S" if s.straddles else "")
        lines.append(
            f"  {s.index:>3} {show(s.text)[:18]:<18} {p_text(s.prob):>7} {s.rank:>6}  {_alts(s)}"
            + (f"  [{flags}]" if flags else "")
        )
    if trace.stop_reason:
        lines.append(f"  stopped: {trace.stop_reason}")
    if trace.straddles:
        lines.append("  S: the first token begins inside the prompt (merged across the boundary)")
    return encodable("\n".join(lines))


def divergence_text(d) -> str:
    text = as_text(divergence_phrase(d))
    return text if not d.diverged else f"{text} Top: {_alts(d.step, 5)}"


def trace_divergence_text(d) -> str:
    parts = [as_text(parting_phrase(d))]
    if not d.diverged:
        return parts[0]
    for label, step in (("a", d.step_a), ("b", d.step_b)):
        if step is None:
            parts.append(f"  {label}: ended here")
        else:
            parts.append(f"  {label}: {show(step.text)} p={p_text(step.prob)} rank {step.rank}")
    return "\n".join(parts)


def comparison_text(c) -> str:
    lines = [f"Comparison: {as_text(comparison_phrase(c))}"]
    lines.append(f"  {'segment':<20} {'base lp':>9} {'tuned lp':>9} {'delta':>8}")
    for i, s in enumerate(c.segments):
        mark = "  <- first drop" if i == c.first_drop else ""
        lines.append(f"  {show(s.text)[:20]:<20} {s.base_logprob:>9.3f} {s.tuned_logprob:>9.3f} {s.delta:>+8.3f}{mark}")
    if c.first_drop is None:
        lines.append(f"  no segment drops by more than {c.threshold:g} nats")
    return "\n".join(lines)


RUN_LABELS = {"tuned": "tuned", "tuned_forced": "tuned forced", "base": "base",
              "base_forced": "base forced", "reference": "reference"}


def _num(p: float) -> str:
    return f"{p:.2g}"


def run_cell(run) -> str:
    """``fail 0/10 p=1.4e-06 r57``: greedy check, pass rate, P(expected) and rank where the
    run answers (the numbers a verdict rests on)."""
    parts = ["PASS" if run.passed else "fail"]
    if run.rate is not None:
        parts.append(str(run.rate))
    if run.p_expected is not None:
        parts.append(f"p={_num(run.p_expected)} r{run.rank_expected}")
    return " ".join(parts)


def run_evidence(run) -> str:
    """One line: the cell, the 95% interval, and where the run leaves the expected answer."""
    line = run_cell(run)
    if run.rate is not None:
        line += f" ({100 * run.rate.low:.0f}-{100 * run.rate.high:.0f}%)"
    if run.p_expected is not None:
        step = run.divergent_step
        line += ("; writes expected greedily" if step is None else
                 f"; leaves it at {show(step.text)} (rank {step.rank}), preferring {show(step.top[0].text)}"
                 if step.top else f"; leaves it at {show(step.text)} (rank {step.rank})")
    return line


def diagnosis_text(d) -> str:
    head = f"Diagnosis{f' [{d.case_id}]' if d.case_id else ''}: {d.verdict.upper()} - {d.explanation}"
    lines = [head, f"  {d.summary}", f"  check: {d.check}"]
    if d.labels:
        lines.append(f"  labels: {', '.join(d.labels)}")
    if d.samples:
        lines.append(f"  samples: {d.samples} per run, temperature {d.temperature:g}, seed {d.seed}")
    for r in d.runs:
        force = f" (forced {show(r.force)})" if r.force else ""
        lines.append(f"  {'PASS' if r.passed else 'fail'} {r.name:<13}{force}: {show(r.text)[:70]}")
        lines.append(f"       {r.reason}")
        lines.append(f"       {run_evidence(r)}")
    for model in ("tuned", "base"):
        phrase = expected_phrase(d, model)
        if phrase is not None:
            lines.append(f"  {as_text(phrase)}")
    gain = d.expected_gain()
    if gain is not None:
        lines.append(f"  log P(expected) tuned - base: {gain:+.2f} nats")
    if d.sweep is not None:
        lines.append(f"  sweep: {show(d.sweep.watch)} stays greedy for "
                     f"{sum(r.watch_is_greedy for r in d.sweep.rows)}/{len(d.sweep.rows)} swept values")
    return encodable("\n".join(lines))


RUN_ORDER = ("tuned", "tuned_forced", "base", "base_forced")


def verdict_rows(results) -> list[list[str]]:
    """One row per ``diagnose_many`` result (a Diagnosis or a FailedCase)."""
    rows = []
    for r in results:
        if r.verdict == "error":  # a FailedCase: the case could not be read or run
            rows.append([r.id, "", "ERROR", clip(str(r), 60)] + [""] * (len(VERDICT_HEADER) - 4))
            continue
        where, _, _ = headline_cells(type_of(r).headline_of(r))
        runs = [r.run(name) for name in RUN_ORDER]
        rows.append([r.case_id or "", getattr(r, "adapter", "") or "", r.verdict,
                     r.summary.split(": ", 1)[-1], ", ".join(r.labels),
                     *("" if run is None else run_cell(run) for run in runs), clip(where, 40)])
    return rows


VERDICT_HEADER = ["case", "adapter", "verdict", "rests on", "labels", "tuned", "tuned forced", "base",
                  "base forced", "first divergent token (tuned)"]


TABLE_WIDTH = 120  # a terminal's columns: the verdict table never draws wider (the HTML report has the rest)
_GAP = "  "
MIN_ROOM = 20  # columns the case id and the first divergent token share, at least
PASS_MARK, FAIL_MARK, RESTS_MARK = "\u2713", "\u2717", "*"  # check mark, ballot x


def _p(x: float) -> str:
    """P(expected) in two significant digits, the exponent without padding: ``8.4e-6``."""
    text = f"{x:.2g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def _run_terminal(run, rests: bool, detail: bool) -> str:
    """``\u2717 0/10* p=8.4e-6 r18``: greedy mark, pass rate (``*`` where the verdict rests on
    the run), and with ``detail`` P(expected) and its first token's rank where the run answers."""
    if run is None:
        return ""
    parts = [PASS_MARK if run.passed else FAIL_MARK]
    if run.rate is not None:
        parts.append(str(run.rate))
    if rests:
        parts[-1] += RESTS_MARK
    if detail and run.p_expected is not None:
        parts.append(f"p={_p(run.p_expected)} r{run.rank_expected}")
    return " ".join(parts)


def _pair(head: str, a: str | None, mid: str, b: str | None, n: int, none: str) -> str:
    """``head 'a' mid 'b'`` in at most ``n`` columns: each token quoted, the longer cut first."""
    shown = [none if t is None else show(t) for t in (a, b)]
    room = n - width(head + mid)
    wa, wb = (width(x) for x in shown)
    if room < 8:  # no room for two quoted tokens: the cell cut as one piece
        return fit(f"{head}{shown[0]}{mid}{shown[1]}", n)
    if wa + wb > room:
        ka = min(wa, max(room // 2, room - wb))
        kb = room - ka
        shown = [fit(none, k) if t is None else quoted(t, k) for t, k in ((a, ka), (b, kb))]
    return f"{head}{shown[0]}{mid}{shown[1]}"


def _where(part, n: int) -> str:
    """The "first divergent token" cell (see :func:`probe.render.phrases.parting_cell`), in
    at most ``n`` columns."""
    if part is None:
        return ""
    if not part.diverged:
        return fit("none (writes expected)" if part.against == "expected" else "same as base", n)
    if part.against == "expected":
        return _pair("", part.left, " -> ", part.right, n, "?")
    return _pair("", part.left, " / ", part.right, n, "END")


def _terminal_rows(results, detail: bool = True) -> list[dict]:
    """Each result as the pieces of its terminal row (uncut); ``detail``: the free runs' p and
    rank too."""
    rows = []
    for r in results:
        if r.verdict == "error":  # a FailedCase: the case could not be read or run
            rows.append({"case": visible(r.id or ""), "adapter": "", "error": visible(str(r))})
            continue
        runs = {run.name: run for run in r.runs}
        rests = set(r.rests_on)
        cells = [_run_terminal(runs.get(name), name in rests, detail=detail and not name.endswith("_forced"))
                 for name in RUN_ORDER]
        rows.append({"case": visible(r.case_id or ""), "adapter": visible(getattr(r, "adapter", "") or ""),
                     "verdict": r.verdict if r.verdict == r.leaning else f"{r.leaning}?", "cells": cells,
                     "where": type_of(r).headline_of(r).where,
                     "labels": [visible(x) for x in r.labels if x != r.leaning]})
    return rows


_HEAD_TOP = ["", "", "tuned", "", "base", "", ""]
_HEAD = ["case", "verdict", "free", "forced", "free", "forced", "first divergent token"]


def _notation(rows, cut: bool) -> list[str]:
    """The notation line(s): each mark and abbreviation the table uses, said once."""
    runs = [row for row in rows if "cells" in row]
    cells = " ".join(c for row in runs for c in row["cells"])
    parts = [f"{PASS_MARK}/{FAIL_MARK} = the run's greedy answer passes/fails the check"]
    if "/" in cells.replace(f"{PASS_MARK}/{FAIL_MARK}", ""):
        parts.append("k/n = samples that pass")
    parts.append(f"{RESTS_MARK} = the runs the verdict rests on")
    if "p=" in cells:
        parts.append("p = P(expected) where the run answers; rN = rank of its first token there")
    parts.append("free = the model's own answer; forced = after the case's forced prefix "
                 "(its p and rank: in the HTML report)")
    leanings = list(dict.fromkeys(row["verdict"] for row in runs if row["verdict"].endswith("?")))
    if leanings:
        parts.append(f"{', '.join(leanings)} = uncertain, leaning that way (the 95% intervals of the runs it "
                     "rests on overlap)")
    wheres = [row["where"] for row in runs if row["where"] is not None]
    if any(w.against == "expected" for w in wheres):
        parts.append("first divergent token: 'a' -> 'b' = the expected token where the tuned model leaves it "
                     "-> the token it prefers")
    if any(w.against == "base" for w in wheres):
        parts.append("'a' / 'b' = base's / tuned's token where their answers part (no expected answer; END = it "
                     "ended)")
    if cut:
        parts.append(f"{ELLIPSIS} = cut to fit (the HTML report shows it whole)")
    extra = [f"{row['case']}: {', '.join(row['labels'])}" for row in runs if row["labels"]]
    lines = wrap(["notation: " + parts[0]] + parts[1:], TABLE_WIDTH)
    if extra:
        lines += wrap(["other labels: " + extra[0]] + extra[1:], TABLE_WIDTH)
    return lines


def verdict_table(results) -> str:
    """The verdict table, at most :data:`TABLE_WIDTH` columns wide: per case the verdict, each
    run as ``\u2713|\u2717 [k/n] [p=P(expected) rRANK]`` and where the tuned model first leaves
    the expected answer; the rows grouped under their adapter (when there are several); a
    notation line under it says each mark once. Long case ids and tokens are cut with an ellipsis, numbers never; wide
    (CJK) characters count two columns. The HTML views keep every column whole."""
    for detail in (True, False):  # without p and rank only where numbers leave no room (n, rank in the 1000s)
        rows = _terminal_rows(results, detail)
        runs = [row for row in rows if "cells" in row]
        fixed = [max([width(_HEAD[i])] + [width(row["verdict"] if i == 1 else row["cells"][i - 2]) for row in runs])
                 for i in range(1, 6)]
        room = TABLE_WIDTH - sum(fixed) - len(_GAP) * 6
        if room >= MIN_ROOM:
            break
    natural_case = max([width(_HEAD[0])] + [width(row["case"]) for row in rows])
    natural_where = max([width(_HEAD[6])] + [width(_where(row["where"], 10 ** 6)) for row in runs])
    case_w = min(natural_case, max(room // 2, room - natural_where))
    where_w = min(natural_where, room - case_w)
    widths = [case_w, *fixed, where_w]

    def line(cells) -> str:
        return _GAP.join(pad(fit(c, w), w) for c, w in zip(cells, widths)).rstrip()

    out = [line(_HEAD_TOP), line(_HEAD), line(["-" * w for w in widths])]
    adapter = ""
    grouped = len({row["adapter"] for row in rows}) > 1  # one adapter for all: the caller's heading names it
    for row in rows:
        if grouped and row["adapter"] and row["adapter"] != adapter:
            out.append(fit(f"adapter {row['adapter']}:", TABLE_WIDTH))
        adapter = row["adapter"] or adapter
        if "error" in row:
            head = pad(fit(row["case"], case_w), case_w) + _GAP + "ERROR" + _GAP
            out.append(head + fit(row["error"], TABLE_WIDTH - width(head)))
            continue
        out.append(line([row["case"], row["verdict"], *row["cells"], _where(row["where"], where_w)]))
    notes = _notation(rows, ELLIPSIS in "".join(out))
    if not detail:
        notes += wrap(["P(expected) and ranks left out to fit: the HTML report has them"], TABLE_WIDTH)
    return encodable("\n".join(out + [""] + notes))


def case_text(case) -> str:
    head = f"Case {case.id}" + (f" [{case.title}]" if case.title and case.title != case.id else "")
    lines = [head + (f": {case.verdict.upper()}" if case.verdict else "")]
    if case.labels:
        lines.append(f"  labels: {', '.join(case.labels)}")
    if case.prompt is not None:
        prompt = case.prompt if isinstance(case.prompt, str) else " / ".join(
            f"{m.get('role', '?')}: {m.get('content', '')}" for m in case.prompt)
        lines.append(f"  prompt: {show(clip(prompt, 100))}")
    for key in ("expected", "force", "base_prompt", "check"):
        value = getattr(case, key)
        if value is not None:
            lines.append(f"  {key}: {show(clip(value, 80))}")
    if case.tags:
        lines.append(f"  tags: {', '.join(case.tags)}")
    if case.note:
        lines.append(f"  note: {case.note}")
    for m in case.models:
        adapter = f" + {m.adapter}" if m.adapter else ""
        lines.append(f"  {m.role}: {m.name}{adapter} [{m.dtype or '?'}, {m.fingerprint or 'no fingerprint'}]")
    lines.append(f"  results: {', '.join(f'{k} ({type_of(v).name})' for k, v in case.results.items())}")
    lines.append(f"  made {case.created} with " + ", ".join(f"{k} {v}" for k, v in case.versions.items()))
    return encodable("\n".join(lines))
