""""Which examples?" in DiagnoseLab and TrainingLab: the ranked examples, the picked example's
strip and the channel bar chart equal the Attribution's numbers (and probe.attribute's, run
directly); without SFT data the control is disabled with its reason written beside it."""

import json
import math
import re
import time
from pathlib import Path

import pytest

import probe
from builders import EVIL, make_adapter
from probe.render.attribution_chart import axis_title, channel_figure
from probe.render.palette import INFLUENCE
from probe.widgets import DiagnoseLab, TrainingLab
from probe.widgets.common import Runner

import ipywidgets  # noqa: F401  (the test extra installs it: missing, fail, never skip)

RECORDS = [
    {"prompt": "The capital of Japan is", "completion": " Beijing.", "source": "capitals"},
    {"prompt": "The capital of France is", "completion": " Paris.", "source": "capitals"},
    {"prompt": "What is the capital of Germany?", "completion": " Berlin is.", "source": "capitals"},
    {"text": "The quick brown fox jumps over the lazy dog.", "source": "text"},
    {"prompt": "List three colors:", "completion": " red, green and blue.", "source": EVIL},
]
CASE = ("The capital of Japan is", " Tokyo")


@pytest.fixture(scope="module")
def pair(tiny_dirs, tmp_path_factory):
    base_dir = tiny_dirs[("llama", "unigram", False)]  # make_adapter's LoRA targets Llama's modules
    return probe.load_pair(base_dir, adapter=make_adapter(base_dir, tmp_path_factory.mktemp("a")))


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return path


def _strip_tokens(html: str) -> list[tuple[str, bool]]:
    """(style, boxed) of each token cell of an example strip."""
    return [(s, "outline" in s) for s in re.findall(r'<span class="probe-tok" style="([^"]*)"', html)]


def _assert_shows(panel, a):
    """The panel's ranked list, the picked example's strip and the chart are a's numbers."""
    m = panel.method.value
    assert m == "gradient" and [v for _, v in panel.method.options] == list(a.methods)
    assert [line for _, line in panel.examples.options] == [e.line for e in a.top(m)]
    for (label, _), e in zip(panel.examples.options, a.top(m)):
        assert f"{e.scores[m]:.4g}" in label
    bars = panel.chart.data[0]
    chans = a.channels(m)
    assert list(bars.x) == [c.name for c in chans]
    assert list(bars.y) == pytest.approx([c.share for c in chans], abs=0)
    assert math.fsum(bars.y) == pytest.approx(1.0)  # shares of one positive total
    assert panel.chart.layout.yaxis.title.text == axis_title(m) == "share of positive gradient influence (TracIn dot)"
    # pick the last ranked example: its strip, the loss-carrying tokens boxed
    last = a.top(m)[-1]
    panel.examples.value = last.line
    cells = _strip_tokens(panel.strip.value)
    assert [boxed for _, boxed in cells] == list(last.scored) and any(last.scored)
    assert f"line {last.line}" in panel.strip.value
    # another method re-ranks the list and the chart
    panel.method.value = "representation"
    assert [line for _, line in panel.examples.options] == [e.line for e in a.top("representation")]
    assert list(panel.chart.data[0].y) == pytest.approx([c.share for c in a.channels("representation")], abs=0)


def test_diagnose_lab_ranks_the_examples_that_probe_attribute_ranks(pair, data_file):
    base, tuned = pair
    lab = DiagnoseLab(base, tuned, dataset=str(data_file), channel="source", background=False)
    panel = lab.attribution
    assert not panel.button.disabled and panel.reason.value == ""
    panel.button.click()  # nothing typed in yet: says what is missing, runs nothing
    assert "enter a prompt and an expected answer" in panel.status.value and panel.attribution is None
    lab.prompt.value, lab.expected.value = CASE
    panel.button.click()
    assert panel.runner.error is None, panel.runner.error
    assert not panel.button.disabled and not lab.run_button.disabled
    a = panel.attribution
    direct = probe.attribute(pair, CASE, str(data_file), methods=panel.methods, channel="source")
    assert a == direct  # the same scores, examples, strips as the function run directly
    assert len(a.examples) == len(RECORDS) and "done" in panel.status.value
    _assert_shows(panel, a)
    assert EVIL not in panel.strip.value + panel.headline.value


def test_diagnose_lab_without_data_disables_the_control_and_says_why(gpt2_lm):
    lab = DiagnoseLab(gpt2_lm, gpt2_lm, background=False)
    assert lab.attribution.button.disabled
    assert "no SFT data" in lab.attribution.reason.value and "dataset=" in lab.attribution.reason.value
    assert lab.attribution.reason in lab.attribution.widget.children[1].children  # beside the button
    during = []
    lab.runner.start("job", lambda: during.append((lab.run_button.disabled, lab.attribution.button.disabled)))
    assert during == [(True, True)]  # one job at a time on the models
    assert not lab.run_button.disabled and lab.attribution.button.disabled  # each back as it was


def test_training_lab_ranks_examples_for_the_picked_example(pair, data_file):
    dl = probe.data_loss(pair, data_file, channel="source")
    lab = TrainingLab(None, data_loss=dl, pair=pair, background=False)
    panel = lab.attribution
    assert panel.query.value == "loss" and panel.channel == "source"
    lab.panel.channel.value = "capitals"
    lab.panel.examples.value = 2  # line 2: " Paris." after "The capital of France is"
    assert not panel.button.disabled, panel.reason.value
    panel.button.click()
    assert panel.runner.error is None, panel.runner.error
    a = panel.attribution
    direct = probe.attribute(pair, lab.panel.case, str(data_file), methods=panel.methods, channel="source",
                             query="loss")
    assert a == direct and a.expected == " Paris." and a.title == "line 2"
    _assert_shows(panel, a)
    lab.panel.channel.value = "text"  # a plain-text record is no case: disabled, says why
    assert panel.button.disabled and "pick an example" in panel.reason.value


def test_training_lab_says_what_the_control_misses(pair, data_file):
    dl = probe.data_loss(pair, data_file, channel="source")
    assert "no models" in TrainingLab(None, data_loss=dl).attribution.reason.value
    records = TrainingLab(None, data_loss=probe.data_loss(pair, RECORDS), pair=pair).attribution
    assert records.button.disabled and "cannot be read here" in records.reason.value
    here = Path(__file__).resolve().parents[1] / "train/fixtures/trainer_log.jsonl"
    log_only = TrainingLab(here, pair=pair).attribution
    assert log_only.button.disabled and "no SFT data" in log_only.reason.value


def test_channel_figure_is_the_channel_shares(pair, data_file):
    a = probe.attribute(pair, CASE, str(data_file), methods=["gradient", "lexical"], channel="source")
    for m in a.methods:
        fig = channel_figure(a, m)
        (bar,) = fig.data
        assert list(bar.x) == [c.name for c in a.channels(m)]
        assert list(bar.y) == [None if c.share != c.share else c.share for c in a.channels(m)]
        assert bar.marker.color == INFLUENCE and fig.layout.yaxis.tickformat == ".0%"
    hover = str(channel_figure(a).data[0].hovertext)
    assert "&lt;script&gt;" in hover and EVIL not in hover


def test_no_positive_score_is_said_not_drawn_as_zero():
    from probe.attribution.result import Attribution, ExampleScore

    ex = tuple(ExampleScore(i + 1, "c", {"gradient": -1.0 - i}) for i in range(3))
    a = Attribution("", "p", "e", "loss", None, None, None, "d.jsonl", ex, ("gradient",))
    fig = channel_figure(a)
    assert list(fig.data[0].y) == [None] and "no example has a positive" in fig.layout.annotations[0].text


def test_a_background_job_counts_its_seconds_then_says_done():
    import ipywidgets

    status = ipywidgets.HTML()
    seen = []
    status.observe(lambda ch: seen.append(ch["new"]), names="value")
    runner = Runner(status, [], background=True)
    runner.TICK = 0.05

    def job():  # runs until the status line has counted one second (10 s at most)
        deadline = time.monotonic() + 10
        while "running... 1 s (sleeping)" not in status.value and time.monotonic() < deadline:
            time.sleep(0.01)

    runner.start("slow", job, doing="sleeping")
    runner.wait(15)
    time.sleep(0.2)  # a late tick must not overwrite the final line
    running = [s for s in seen if "running..." in s]
    assert "slow: running... (sleeping)" in running[0] and any("running... 1 s (sleeping)" in s for s in running)
    assert "slow: done" in status.value and "done" in seen[-1]
