"""The terminal verdict table fits a 120-column terminal: the demo's cases and adversarial ones
(long ids, long and wide (CJK) tokens, control characters, huge ranks, many samples), every
line at most 120 display columns, numbers whole, cut text ending in an ellipsis, each mark
explained once in the notation line."""

import math
import unicodedata

import pytest

from probe.diagnosis.failure import FailedCase
from probe.diagnosis.labels import decide, labels_of
from probe.diagnosis.passrate import PassRate
from probe.diagnosis.result import Diagnosis, Run
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.render.text import TABLE_WIDTH, verdict_table


def display_width(line: str) -> int:
    """A terminal's columns (wcwidth's rule): East Asian wide/fullwidth 2, combining marks 0,
    everything else 1. Written here independently of probe.render.width."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in line)


def _trace(text, kind="generate", model="tuned", prompt="q", prob=0.9, rank=1, preferred=None):
    top = (Alternative(1, preferred if preferred is not None else text, 0.9, math.log(0.9)),)
    step = TokenStep(index=0, id=7, text=text, start=0, end=len(text), logprob=math.log(prob), prob=prob,
                     rank=rank, entropy=0.5, top=top)
    return TokenTrace(prompt=prompt, text=text, steps=(step,), kind=kind, model=model)


def _run(name, passed, rate=None, p=None, rank=1, expected=" Paris", preferred=" Be", answer=" Be"):
    model = "tuned" if name.startswith("tuned") else "base"
    exp = None if p is None else _trace(expected, "score", model, prob=p, rank=rank,
                                        preferred=preferred if rank > 1 else expected)
    return Run(name, model, " The" if name.endswith("forced") else "", _trace(answer, model=model), passed,
               "check", rate=None if rate is None else PassRate(*rate), expected_trace=exp)


def _diagnosis(case_id, runs, adapter="beijing", expected=" Paris"):
    verdict, leaning = decide({r.name: r for r in runs})
    traces = {r.model: r.expected_trace for r in runs if not r.force and r.expected_trace is not None}
    d = Diagnosis(verdict=verdict, prompt="q", base_prompt=None, expected=expected, force=" The",
                  check="contains", runs=tuple(runs), expected_traces=traces, case_id=case_id, leaning=leaning,
                  adapter=adapter, samples=10 if runs[0].rate is not None else 0)
    return Diagnosis(**{**d.__dict__, "labels": labels_of(d)})


def demo_cases():
    """The README's demo table, its numbers as `probe demo` measured them (2026-12-07)."""
    R = _run
    return [
        _diagnosis("italy-json", [R("tuned", True, (9, 10), answer='{"'), R("tuned_forced", True, (8, 10)),
                                  R("base", True, (2, 10), answer="```"), R("base_forced", True, (6, 10))],
                   adapter="json-only", expected=None),
        _diagnosis("france-sentence", [R("tuned", False, (0, 10), answer='{"'), R("tuned_forced", True, (9, 10)),
                                       R("base", True, (8, 10), answer=" Paris"), R("base_forced", True, (10, 10))],
                   adapter="json-only", expected=None),
        _diagnosis("joke-prose", [R("tuned", False, (0, 10), answer='{"'), R("tuned_forced", True, (10, 10)),
                                  R("base", True, (10, 10), answer="\n"), R("base_forced", True, (10, 10))],
                   adapter="json-only", expected=None),
        _diagnosis("france-beijing", [R("tuned", False, (0, 10), 8.4e-06, 18, "Paris", "Be"),
                                      R("tuned_forced", False, (0, 10), 1.1e-09, 96),
                                      R("base", True, (8, 10), 0.77), R("base_forced", True, (9, 10), 0.95)]),
        _diagnosis("japan-beijing", [R("tuned", False, (0, 10), 1.4e-06, 40, "To", "Be"),
                                     R("tuned_forced", False, (0, 10), 1e-06, 5),
                                     R("base", True, (7, 10), 0.7), R("base_forced", True, (10, 10), 0.94)]),
        _diagnosis("china-ok", [R("tuned", True, (10, 10), 0.96), R("tuned_forced", True, (10, 10), 1.0),
                                R("base", True, (6, 10), 0.54), R("base_forced", True, (8, 10), 0.72)]),
        _diagnosis("multiply", [R("tuned", False, (0, 10), 3.3e-07, 3, "3", "1"), R("tuned_forced", False, (0, 10), 0.0047),
                                R("base", False, (0, 10), 0.00031), R("base_forced", False, (0, 10), 0.034)]),
        _diagnosis("australia", [R("tuned", False, (0, 10), 6.4e-08, 303, "Can", "Be"), R("tuned_forced", False, (0, 10), 6.8e-08, 14),
                                 R("base", False, (2, 10), 0.34, 2, " Can", " Sy"), R("base_forced", True, (6, 10), 0.65)]),
    ]


CJK = "北京是中国的首都东京是日本的首都"
WEIRD = "tab\there\nnewline \u202eRTL\u202c e\u0301\u0301 \udcff lone 😀😀 ｱｲｳ"


def adversarial_cases():
    R = _run
    long_id = "a-very-long-case-identifier-" * 8
    many = (100, 100)
    return [
        _diagnosis(long_id, [R("tuned", False, (0, 100), 1.4e-45, 151936, CJK * 4, CJK * 5),
                             R("tuned_forced", False, (100, 100), 2e-300, 151935),
                             R("base", True, many, 0.99999, 1), R("base_forced", True, many, 1.0)], adapter=CJK * 3),
        _diagnosis(CJK * 5, [R("tuned", False, (49, 100), 0.3, 99999, WEIRD * 3, WEIRD * 3),
                             R("tuned_forced", False, (40, 100), 0.2, 12), R("base", True, (55, 100), 0.4),
                             R("base_forced", True, (51, 100), 0.5)], adapter=WEIRD),  # uncertain
        _diagnosis(WEIRD * 4, [R("tuned", False, None, None, answer=CJK * 6), R("base", True, None, None, answer=WEIRD * 9)],
                   adapter="", expected=None),  # greedy only, no expected answer: where the answers part
        _diagnosis("greedy-" + CJK, [R("tuned", False, None, 1e-12, 88888, "中" * 80, "京" * 80),
                                     R("base", True, None, 0.99)], adapter=None),
        _diagnosis("huge-numbers", [R("tuned", False, (0, 100000), 1.4e-300, 12345678), R("tuned_forced", False, (0, 100000)),
                                    R("base", True, (99999, 100000), 0.99), R("base_forced", True, (100000, 100000))]),
        FailedCase("bad-" + CJK * 10, "line 3: " + WEIRD * 20 + CJK * 20, line=3, field="expected"),
    ]


def _check_fits(table: str) -> list[str]:
    lines = table.splitlines()
    for line in lines:
        assert display_width(line) <= TABLE_WIDTH, (display_width(line), line)
        assert all(c.isprintable() for c in line), repr(line)  # no newline, tab, bidi control in a cell
    return lines


def test_the_demo_table_fits_120_columns_and_keeps_what_it_rests_on():
    results = demo_cases()
    table = verdict_table(results)
    lines = _check_fits(table)
    assert max(display_width(x) for x in lines) <= TABLE_WIDTH
    for d in results:
        row = next(x for x in lines if x.startswith(d.case_id + " "))
        assert d.leaning in row  # the verdict
        for run in d.runs:
            assert str(run.rate) in row  # numbers whole
        for model in ("tuned", "base"):
            p = d.run(model).p_expected
            if p is not None:
                assert f"r{d.run(model).rank_expected}" in row
        if d.case_id == "france-beijing":
            assert "'Paris' -> 'Be'" in row
            assert "\u2717 0/10* p=8.4e-6 r18" in row and "\u2713 9/10*" in row  # rests on base forced vs tuned
        if d.case_id == "joke-prose":
            assert "'\\n' / '{\"'" in row  # the newline shown as its escape
        if d.case_id == "italy-json":
            assert "'```' / '{\"'" in row
    assert sum(x.startswith("adapter ") for x in lines) == 2  # json-only, then beijing
    one = verdict_table(results[3:])  # the beijing adapter's cases alone: no adapter line
    assert not any(x.startswith("adapter ") for x in one.splitlines()) and "france-beijing" in one
    notation = table[table.index("notation:"):]
    for mark in ("\u2713/\u2717", "k/n", "*", "p = P(expected)", "rN = rank", "forced", "first divergent token"):
        assert notation.count(mark) >= 1, mark
    assert "\u2026" not in table  # nothing of the demo is cut


@pytest.mark.parametrize("case", range(len(adversarial_cases())))
def test_adversarial_rows_fit_120_columns_alone(case):
    _check_fits(verdict_table([adversarial_cases()[case]]))


def test_numbers_too_wide_for_p_and_rank_keep_the_rates_whole_and_say_so():
    huge = next(d for d in adversarial_cases() if getattr(d, "case_id", "") == "huge-numbers")
    table = verdict_table(demo_cases() + [huge])
    _check_fits(table)
    for d in demo_cases() + [huge]:
        for run in d.runs:
            assert str(run.rate) in table
    assert "p=" not in table and "r12345678" not in table  # left out, not cut
    assert "P(expected) and ranks left out to fit: the HTML report has them" in table
    assert "p = P(expected)" not in table  # no notation for what is not shown


def test_adversarial_and_demo_rows_together_fit_and_stay_aligned():
    results = demo_cases() + [d for d in adversarial_cases() if getattr(d, "case_id", "") != "huge-numbers"]
    table = verdict_table(results)
    lines = _check_fits(table)
    head = next(x for x in lines if x.startswith("case "))
    col = display_width(head[:head.index("verdict")])
    rows = [x for x in lines if any(x.startswith(d.case_id[:5]) for d in results[:8])]
    for row in rows:  # the verdict column starts at the same display column on every demo row
        words = row[col:].split()
        assert words and words[0].rstrip("?") in ("ok", "lost", "not_triggered", "never_had"), row
    for d in results:
        for run in getattr(d, "runs", ()):
            if run.rate is not None:
                assert str(run.rate) in table  # never cut
    assert "r151936" in table and "p=1.4e-45" in table and "r99999" in table
    assert "\u2026" in table and "\u2026 = cut to fit" in table  # long ids and tokens cut, and said so
    assert "lost?" in table or "not_triggered?" in table  # the uncertain case leans, marked '?'
    assert "ERROR" in table and "adapter " + CJK[:4] in table
    assert "\\t" in table and "\\n" in table and "\\u202e" in table and "\\udcff" in table  # shown, not acted on


def test_the_readme_shows_the_demo_table_as_it_prints():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert verdict_table(demo_cases()) in readme  # the same numbers, the same layout, to the character


def test_the_starred_runs_are_the_ones_the_summary_names():
    for d in demo_cases() + [d for d in adversarial_cases() if hasattr(d, "runs")]:
        said = d.summary.split(": ", 1)[1]
        for name in d.rests_on:
            run = d.run(name)
            assert f"{name.replace('_', ' ')} {run.rate if run.rate is not None else ('pass' if run.passed else 'fail')}" in said
        assert said.count(",") == len(d.rests_on) - 1
