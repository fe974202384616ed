"""The EvalFlips widget's wiring without a browser, on the committed lm-eval runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import probe
from probe.widgets import EvalFlips

FIX = Path(__file__).parent / "fixtures"


def test_task_outcome_sample_detail():
    flips = probe.eval_flips(FIX / "base", FIX / "tuned")
    ex = EvalFlips(FIX / "base", FIX / "tuned")
    assert ex.result.table() == flips.table()
    assert ex.task.value == "tiny_mc"  # the task with the most flips comes first
    lost = [s.id for s in flips.cell("tiny_mc", "lost")]
    assert [v for _, v in ex.sample.options] == lost
    assert lost[0] in ex.detail.value and "target" in ex.detail.value
    ex.outcome.value = "gained"
    assert [v for _, v in ex.sample.options] == [s.id for s in flips.cell("tiny_mc", "gained")]
    ex.task.value = "tiny_gen"
    assert list(ex.sample.options) == [] and ex.detail.value == ""
    ex.outcome.value = "never"
    assert len(ex.sample.options) == len(flips.cell("tiny_gen", "never"))
    assert ex.diagnose_button.disabled  # no models given
    with pytest.raises(TypeError, match="EvalFlips takes"):
        EvalFlips(FIX / "base")
