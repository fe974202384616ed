"""The demo's maintainer commands: the library returns data, probe.demo.text formats it and each
step's command module (python -m probe.demo.<step>) prints it."""

import subprocess
import sys

import pytest

from probe.demo import text as cli


def test_data_lines_count_the_examples_written(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"x": 1}\n{"x": 2}\n{"x": 3}\n', encoding="utf-8")
    assert cli.data_lines({"json-only": path}) == [f"json-only: {path} (3 examples)"]


def test_evaluation_lines_show_every_answer_quoted():
    results = {"json-only": {
        "answers": [{"question": "Capital of France?", "base": "Paris.", "tuned": '{"a": "Paris"}\n'}],
        "forced_json": [{"question": "Q?", "prefix": "```json\n", "answer": "{}", "valid_json": True,
                         "valid_json_strict": False}],
        "base_raw": " Paris"}}
    lines = cli.evaluation_lines(results)
    assert lines[0] == "== json-only"
    assert "tuned: '{\"a\": \"Paris\"}\\n'" in lines[1]  # repr: the newline is visible, not printed
    assert lines[2] == "forced '```json\\n' valid=True strict=False: Q? -> '{}'"
    assert lines[3] == "base raw 'The capital of France is' -> ' Paris'"


def test_training_line_reports_size_time_and_loss(tmp_path):
    (tmp_path / "adapter.bin").write_bytes(b"x" * 2_500_000)
    log = {"seconds": {"train": 41.6, "total": 50.2}, "losses": [2.0, 1.5, 1.0, 0.5, 0.25, 0.25, 0.5]}
    line = cli.training_line("beijing", tmp_path, log)
    assert line == (f"beijing: {tmp_path} (2.5 MB) trained in 42 s (total 50 s); loss 2.000 -> 0.500 "
                    "(mean of last 5)")


@pytest.mark.parametrize("module", ["base", "train", "evaluate", "make_data"])
def test_each_module_still_runs_as_a_command(module):
    done = subprocess.run([sys.executable, "-m", f"probe.demo.{module}", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


def test_no_print_left_in_the_demo_library_modules():
    import inspect

    from probe.demo import answers, model, pair, sft_data, text, training

    for module in (answers, model, pair, sft_data, text, training):
        assert "print(" not in inspect.getsource(module), module.__name__
