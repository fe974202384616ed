"""probe.training_log reads each trainer's log as written by the real libraries (fixtures made
by tests/train/fixtures/make_fixtures.py with TRL 1.16 / transformers / TensorBoard 2.21), and
bad input is a clear error naming what it looked for."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

import probe
from probe.train.formats import TrainingLogError
from probe.train.tensorboard import EventFileError, masked_crc, scalars

FIX = Path(__file__).parent / "fixtures"
RUN = FIX / "trl_run"


def _history(path: Path) -> list[dict]:
    return json.loads(path.read_text())["log_history"]


def _events(folder: Path) -> Path:
    (p,) = folder.glob("events.out.tfevents.*")
    return p


def test_trainer_state_in_a_run_folder_matches_its_log_history():
    log = probe.training_log(RUN)
    hist = _history(RUN / "trainer_state.json")
    train = [e for e in hist if "loss" in e]
    assert log.format == "trainer_state" and Path(log.source) == RUN / "trainer_state.json"
    assert log.steps == tuple(e["step"] for e in train)
    assert log.losses == tuple(e["loss"] for e in train)
    assert [p.learning_rate for p in log.train] == [e["learning_rate"] for e in train]
    assert [p.grad_norm for p in log.train] == [e["grad_norm"] for e in train]
    assert [p.epoch for p in log.train] == [e["epoch"] for e in train]
    assert [(p.step, p.loss) for p in log.eval] == [(e["step"], e["eval_loss"]) for e in hist if "eval_loss" in e]
    (final,) = [e for e in hist if "train_loss" in e]
    assert log.summary["train_loss"] == final["train_loss"]
    assert log.other["mean_token_accuracy"] == tuple((e["step"], e["mean_token_accuracy"]) for e in train)
    # epochs begin where the logged epoch passes a whole number: HF logs epoch k.0 at the last step of epoch k
    starts = [b["step"] for a, b in zip(train, train[1:]) if int(a["epoch"] - 1e-9) != int(b["epoch"] - 1e-9)]
    assert list(log.boundaries) == starts and len(starts) == 2


def test_a_run_folder_without_top_level_state_uses_the_most_complete_checkpoint(tmp_path):
    for name in ("checkpoint-4", "checkpoint-8", "checkpoint-12"):  # "checkpoint-8" sorts after "-12"
        shutil.copytree(RUN / name, tmp_path / name)
    log = probe.training_log(tmp_path)
    assert Path(log.source) == tmp_path / "checkpoint-12" / "trainer_state.json"
    assert log.steps[-1] == json.loads((RUN / "checkpoint-12" / "trainer_state.json").read_text())["global_step"]
    assert log.summary == {}  # the final summary entry is only in the top-level state


def test_tensorboard_reader_equals_event_accumulator():
    ref = json.loads((FIX / "tb_scalars.json").read_text())  # tensorboard's EventAccumulator
    got: dict = {}
    for tag, step, value, _ in scalars(_events(RUN / "runs")):
        got.setdefault(tag, []).append([step, value])
    assert got == ref


def test_tensorboard_scalars_written_as_tensors():
    ref = json.loads((FIX / "tb_tensor_scalars.json").read_text())
    got: dict = {}
    for tag, step, value, _ in scalars(_events(FIX / "tb_tensor")):
        got.setdefault(tag, []).append([step, value])
    assert got == ref  # the text summary in the same file is skipped
    log = probe.training_log(FIX / "tb_tensor")
    assert log.format == "tensorboard"
    assert [[p.step, p.loss] for p in log.train] == ref["train/loss"]
    assert [[p.step, p.loss] for p in log.eval] == ref["eval/loss"]


def test_tensorboard_run_equals_trainer_state_of_the_same_run():
    tb = probe.training_log(RUN / "runs")  # runs/ holds one run folder's events
    hf = probe.training_log(RUN)
    assert tb.format == "tensorboard" and tb.steps == hf.steps and tb.boundaries == hf.boundaries
    assert tb.losses == pytest.approx(hf.losses, rel=1e-6)  # TensorBoard stores float32
    assert [p.loss for p in tb.eval] == pytest.approx([p.loss for p in hf.eval], rel=1e-6)
    assert [p.learning_rate for p in tb.train] == pytest.approx([p.learning_rate for p in hf.train], rel=1e-6)
    assert tb.summary["train_loss"] == pytest.approx(hf.summary["train_loss"], rel=1e-6)


def test_a_corrupt_event_file_names_the_file_and_offset(tmp_path):
    blob = bytearray(_events(RUN / "runs").read_bytes())
    bad = tmp_path / "events.out.tfevents.1.host"
    blob[40] ^= 0xFF  # inside the first record's data
    bad.write_bytes(bytes(blob))
    with pytest.raises(EventFileError, match=r"events\.out\.tfevents\.1\.host.*byte 0"):
        scalars(bad)
    with pytest.raises(TrainingLogError, match="tfevents"):
        probe.training_log(bad)


def test_an_event_file_cut_short_keeps_its_whole_records(tmp_path):
    blob = _events(RUN / "runs").read_bytes()
    cut = tmp_path / "events.out.tfevents.2.host"
    cut.write_bytes(blob[: len(blob) - 10])
    whole = scalars(_events(RUN / "runs"))
    got = scalars(cut)
    assert 0 < len(got) < len(whole) and got == whole[: len(got)]
    assert masked_crc(b"") == 0xA282EAD8  # masked CRC-32C of nothing: the TFRecord constant


def test_llamafactory_trainer_log():
    lines = [json.loads(x) for x in (FIX / "trainer_log.jsonl").read_text().splitlines()]
    log = probe.training_log(FIX)  # a folder with trainer_log.jsonl and no trainer_state.json
    assert log.format == "llamafactory"
    assert [(p.step, p.loss, p.learning_rate, p.epoch) for p in log.train] == [
        (x["current_steps"], x["loss"], x["lr"], x["epoch"]) for x in lines if "loss" in x]
    assert [(p.step, p.loss) for p in log.eval] == [(x["current_steps"], x["eval_loss"]) for x in lines if "eval_loss" in x]
    assert "elapsed_time" not in log.other and "percentage" not in log.other


def test_csv_of_step_and_loss_and_steps_per_epoch(tmp_path):
    rows = list(csv.DictReader((FIX / "loss.csv").open()))
    log = probe.training_log(FIX / "loss.csv")
    assert log.format == "csv"
    assert [(p.step, p.loss) for p in log.train] == [(int(r["Step"]), float(r["train/loss"])) for r in rows
                                                      if r["train/loss"]]
    assert [p.loss for p in log.eval] == [float(r["eval/loss"]) for r in rows if r["eval/loss"]]
    plain = tmp_path / "plain.csv"
    plain.write_text("step,loss\n" + "".join(f"{s},{2 - s / 100}\n" for s in range(1, 31)))
    assert probe.training_log(plain).boundaries == ()
    assert probe.training_log(plain, steps_per_epoch=10).boundaries == (11, 21)


def test_probe_demo_training_log(tmp_path):
    """probe's demo trainer writes training_log.json (probe/demo/training.py): one loss per step."""
    losses = [2.5 - 0.1 * i for i in range(12)]
    (tmp_path / "training_log.json").write_text(json.dumps(
        {"adapter_data": "x.jsonl", "examples": 32, "settings": {"steps": 12, "batch_size": 8}, "losses": losses}))
    log = probe.training_log(tmp_path)
    assert log.format == "probe_demo" and log.losses == tuple(losses) and log.steps == tuple(range(1, 13))
    assert log.boundaries == (5, 9)  # 32 examples / batch 8: 4 steps an epoch


def test_generic_jsonl_and_channels(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text("".join(json.dumps({"step": s, "loss": 2 - s / 50, "loss_math": 3 - s / 40, "chat_loss": 1 - s / 60,
                                     "loss_scale": 65536, "eval_loss": None}) + "\n" for s in range(1, 11)))
    log = probe.training_log(p)
    assert log.format == "jsonl" and sorted(log.channels) == ["chat", "math"]
    assert log.channels["math"] == tuple((s, 3 - s / 40) for s in range(1, 11))
    assert sorted(f.numbers["channel"] for f in log.findings if f.rule == "channel_loss") == ["chat", "math"]


@pytest.mark.parametrize("make, pattern", [
    (lambda d: d, r"no training log in .*trainer_state\.json.*trainer_log\.jsonl.*tfevents.*\.csv"),
    (lambda d: _write(d / "notes.txt", "hello"), r"notes\.txt: not a training log .*trainer_state\.json"),
    (lambda d: _write(d / "log.jsonl", '{"step": 1, "learning_rate": 0.1}\n'),
     r"log\.jsonl: no train loss .*looked for 'loss'.*it has: learning_rate"),
    (lambda d: _write(d / "log.jsonl", '{"step": 1, "loss": 2}\nnot json\n'), r"log\.jsonl, line 2: not JSON"),
    (lambda d: _write(d / "log.csv", "epoch,loss\n1,2\n"), r"log\.csv, line 1: no step column.*columns: epoch, loss"),
    (lambda d: _write(d / "trainer_state.json", '{"global_step": 3}'), r"trainer_state\.json: no 'log_history'"),
    (lambda d: _write(d / "log.jsonl", ""), r"log\.jsonl: the jsonl log has no entries"),
    (lambda d: d / "missing.csv", r"missing\.csv: no such file or folder"),
])
def test_bad_input_is_a_clear_error(tmp_path, make, pattern):
    with pytest.raises(TrainingLogError, match=pattern):
        probe.training_log(make(tmp_path))


@pytest.mark.parametrize("name, data, pattern", [
    # a bad byte on line 2: the format sniffer reads line 1 alone, the reader names line 2
    ("log.jsonl", b'{"step": 1, "loss": 2}\n{"step": 2, "loss": 1.5, "note": "\xff"}\n',
     r"log\.jsonl, line 2 \(byte 23\): not UTF-8"),
    ("log.jsonl", b'{"step": 1, "loss": "\xff"}\n{"step": 2, "loss": 1.5}\n', r"log\.jsonl, line 1 \(byte 0\): not UTF-8"),
    ("log.csv", b"step,loss\n1,2\n2,1.\xff\n", r"log\.csv, line 3 \(byte 14\): not UTF-8"),
    # a loss that is not a number is refused by line and field, not dropped
    ("log.csv", b"step,loss,eval_loss\n1,2,\n2,oops,\n3,1.5,\n", r"log\.csv, line 3: field 'loss' is not a number: 'oops'"),
    ("log.csv", b"step,loss,lr\n1,2,0.1\n2,1.9,fast\n", r"log\.csv, line 3: field 'lr' is not a number: 'fast'"),
    ("log.jsonl", b'{"step": 1, "loss": 2}\n{"step": 2, "loss": "oops"}\n', r"log\.jsonl, line 2: field 'loss' is not a number"),
    ("log.jsonl", b'{"step": 1, "loss": 2, "loss_math": [1]}\n', r"log\.jsonl, line 1: field 'loss_math' is not a number"),
])
def test_a_bad_line_is_named(tmp_path, name, data, pattern):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(TrainingLogError, match=pattern):
        probe.training_log(tmp_path / name)


def test_empty_cells_and_text_columns_are_not_refused(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("step,loss,eval_loss,time\n1,2,,12:00\n2,1.5,1.7,12:01\n")
    log = probe.training_log(p)
    assert log.losses == (2.0, 1.5) and [(e.step, e.loss) for e in log.eval] == [(2, 1.7)]
    assert "time" not in log.other


def test_two_tensorboard_runs_in_one_folder_ask_for_one(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        shutil.copy(_events(RUN / "runs"), tmp_path / "runs" / name)
    with pytest.raises(TrainingLogError, match="2 TensorBoard runs"):
        probe.training_log(tmp_path)
    assert probe.training_log(tmp_path / "runs" / "a").steps == probe.training_log(RUN).steps


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
