"""A training log in a case file, the report, the CLI, the figure and the TrainingLab widget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import probe
from probe.cli import main
from probe.render.report import casebook_html

FIX = Path(__file__).parent / "fixtures"
HOSTILE = "<img src=x onerror=alert(1)>"


def test_a_case_holds_a_training_log_and_the_report_shows_it(tmp_path):
    log = probe.training_log(FIX / "trainer_log.jsonl")
    case = probe.Case.from_result(log, title="run")
    loaded = probe.Case.load(case.save(tmp_path / "case.json"))
    assert loaded.results["training_log"] == log
    page = casebook_html([loaded])
    assert 'class="probe-chart probe-loss"' in page and 'data-rule="stepped_loss" data-level="warning"' in page


def test_log_text_is_escaped_in_html(tmp_path):
    folder = tmp_path / HOSTILE.replace("/", "")
    folder.mkdir()
    shutil.copy(FIX / "trainer_log.jsonl", folder)
    html = probe.training_log(folder)._repr_html_()
    assert "<img" not in html and "&lt;img" in html


def test_figure_marks_epochs_and_warnings():
    log = probe.training_log(FIX / "trainer_log.jsonl")
    fig = log.figure()
    names = [t.name for t in fig.data]
    assert names[:2] == ["train loss", "eval loss"] and "learning rate" in names
    assert list(fig.data[0].x) == list(log.steps)
    marked = sorted(s.x0 for s in fig.layout.shapes if s.type == "line")
    assert marked == sorted(s for f in log.warnings for s in f.steps)
    bands = [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"]
    assert bands == [(log.boundaries[0], log.boundaries[1])]  # every other epoch is banded


def test_cli_writes_case_and_report(tmp_path, capsys):
    out, report = tmp_path / "log.json", tmp_path / "log.html"
    assert main(["training-log", str(FIX / "trl_run"), "--out", str(out), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "trainer_state" in printed and "stepped_loss" in printed
    case = probe.Case.load(out)
    assert case.results["training_log"] == probe.training_log(FIX / "trl_run")
    assert report.read_text().count('class="probe-chart probe-loss"') == 1
    assert json.loads(out.read_text())["case"]["results"]["training_log"]["type"] == "TrainingLog"


def test_cli_rule_options_and_bad_input(tmp_path, capsys):
    assert main(["training-log", str(FIX / "trainer_log.jsonl"), "--step-min-drop", "5"]) == 0
    assert "[ok] stepped_loss" in capsys.readouterr().out
    assert main(["training-log", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no training log in" in err and "trainer_state.json" in err


def test_training_lab_rereads_on_a_slider_and_shows_channels():
    import ipywidgets  # noqa: F401  (the test extra installs it: missing, fail, never skip)
    from probe.widgets import TrainingLab

    data_loss = SimpleNamespace(channels={HOSTILE: 1.25, "math": SimpleNamespace(loss=0.3, tokens=120)})
    lab = TrainingLab(FIX / "trainer_log.jsonl", data_loss=data_loss)
    assert lab.log.finding("stepped_loss").level == "warning"
    assert lab.pick.value == 2 and "stepped_loss" in lab.detail.value
    lab.sliders["step_min_drop"].value = 1.0  # above every boundary's drop here
    assert lab.log.rules.step_min_drop == 1.0 and lab.log.finding("stepped_loss").level == "ok"
    assert "<img" not in lab.channels.value and "&lt;img" in lab.channels.value
    assert "<td>120</td>" in lab.channels.value
    assert len(lab.chart.data) == len(lab.log.figure().data)
    with pytest.raises(TypeError, match="channels"):
        lab.set_data_loss(object())


def test_a_long_log_is_thinned_in_the_svg_keeping_its_spike(tmp_path):
    from probe.render.training import _thin

    steps = list(range(1, 20001))
    values = [2.0 - s / 40000 + (3.0 if s == 12345 else 0.0) for s in steps]
    thin = _thin(steps, values)
    assert len(thin) <= 1600 and (12345, values[12344]) in thin
    assert [s for s, _ in thin] == sorted(s for s, _ in thin)
    p = tmp_path / "long.csv"
    p.write_text("step,loss,epoch\n" + "".join(f"{s},{v},{s / 5000}\n" for s, v in zip(steps, values)))
    log = probe.training_log(p)
    assert log.finding("loss_spikes").steps == (12345,)
    assert [(e, a, b) for e, a, b, _ in log.epoch_means()] == [(0, 1, 5000), (1, 5001, 10000), (2, 10001, 15000),
                                                                (3, 15001, 20000)]
    assert log.epoch_means()[0][3] == pytest.approx(sum(values[:5000]) / 5000)
    assert len(log._repr_html_()) < 100_000


def test_the_loss_chart_reads_on_its_own_axes_from_zero_every_epoch_each_warning_named():
    import re

    from probe.render.training import loss_svg

    log = probe.training_log(FIX / "trainer_log.jsonl")
    svg = loss_svg(log)
    ys = [float(v) for v in re.findall(r'text-anchor="end" fill="currentColor">([-\d.e]+)</text>', svg)]
    assert len(ys) >= 3 and min(ys) >= 0  # round ticks, a loss axis that never goes below 0
    epochs = len(log.boundaries) + 1
    assert len(re.findall(r"<title>epoch \d+: steps", svg)) == epochs  # a band for every epoch
    warned = {f.rule for f in log.findings if f.level == "warning" and f.steps}
    assert warned and all(f'class="probe-finding">{rule}</text>' in svg for rule in warned)
    assert "loss (nats)" in svg and "training step" in svg and "train loss</text>" in svg
