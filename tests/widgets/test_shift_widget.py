"""ShiftExplorer wiring without a browser: prompt -> strip, position -> top-k, token -> its prompts."""

import pytest

import probe
from probe.widgets import ShiftExplorer
from builders import fake_shift


def test_explorer_follows_picks_on_a_computed_shift():
    s = fake_shift()
    ex = ShiftExplorer(s)
    assert ex.prompt.value == 0 and ex.strip.value.count('class="probe-tok') == 2
    assert ".probe-tip{display:none" in ex.strip.value  # hover cards stay hidden until hovered
    ex.position.value = 1
    assert 'probe-div" data-index="1"' in ex.strip.value and "base rank 5" in ex.detail.value
    be = s.token(" Be").id
    ex.token.value = be
    assert ex.wins.value.count("<li") == 2 and "&lt;script&gt;" in ex.wins.value
    ex.win.value = (1, 0)  # jump to the second prompt where it wins
    assert ex.prompt.value == 1 and ex.position.value == 0
    assert "<script>" not in ex.summary.value + ex.table.value + ex.strip.value + ex.detail.value


def test_explorer_computes_on_run(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    other = probe.load(tiny_dirs[("gpt2", "bpe", False)], name="copy")
    ex = ShiftExplorer(lm, other, ["The capital of France is", "x"], background=False, max_new_tokens=3)
    assert ex.result is None
    ex.run_button.click()
    assert ex.runner.error is None, ex.runner.error
    assert ex.result.n_positions == 6 and len(ex.prompt.options) == 2
    assert "done" in ex.status.value
    with pytest.raises(TypeError, match="Shift, or"):
        ShiftExplorer(lm)

