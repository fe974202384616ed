"""`probe shift` on tiny models: a loadable case file, an offline report, clear input errors."""

import json

import probe
from probe import cli
from probe.models.tiny import save_tiny

HOSTILE = "<img src=x onerror=alert(1)> what?"


def test_shift_cli_writes_a_case_and_a_report(tmp_path, tiny_dirs, capsys):
    base_dir = tiny_dirs[("gpt2", "bpe", False)]
    tuned_dir = save_tiny(tmp_path / "tuned", "gpt2", "bpe", seed=3)
    prompts = tmp_path / "p.txt"
    prompts.write_text(f"The capital of France is\n\n{HOSTILE}\n", encoding="utf-8")
    out, report = tmp_path / "s.json", tmp_path / "s.html"
    code = cli.main(["shift", "--base", str(base_dir), "--tuned", str(tuned_dir), "--prompts", str(prompts),
                     "--out", str(out), "--report", str(report), "--max-new-tokens", "4", "--min-prob", "0"])
    assert code == 0, capsys.readouterr().err
    case = probe.Case.load(out)
    s = case.results["shift"]
    assert [ps.prompt for ps in s.prompts] == ["The capital of France is", HOSTILE]
    again = probe.shift(probe.load(base_dir), probe.load(tuned_dir), [p.prompt for p in s.prompts],
                        max_new_tokens=4, min_prob=0)
    assert [[p.id for p in ps.positions] for ps in again.prompts] == [[p.id for p in ps.positions] for ps in s.prompts]
    assert [p.base_rank for p in again.positions] == [p.base_rank for p in s.positions]
    page = report.read_text()
    assert "<img src=x" not in page and "&lt;img src=x" in page and 'id="probe-shift"' in page
    assert "Shift" in capsys.readouterr().out


def test_shift_cli_with_a_case_file_adds_the_regression(tmp_path, tiny_dirs):
    base_dir = tiny_dirs[("gpt2", "bpe", False)]
    cases = tmp_path / "c.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in [
        {"id": "a", "prompt": "The capital of France is", "expected": " Paris", "tags": ["geo"]},
        {"id": "b", "prompt": "x", "check": {"regex": ".*"}, "tags": ["misc"]}]), encoding="utf-8")
    out = tmp_path / "s.json"
    assert cli.main(["shift", "--base", str(base_dir), "--tuned", str(base_dir), "--prompts", str(cases),
                     "--out", str(out), "--max-new-tokens", "3"]) == 0
    case = probe.Case.load(out)
    r = case.results["regression"]
    assert [c.id for c in r.cases] == ["a", "b"] and r.cell("misc", "kept") == ["b"]
    assert case.results["shift"].shifted_ratio == 0.0  # the same model twice


def test_shift_cli_input_errors_exit_1(tmp_path, tiny_dirs, capsys):
    base_dir = str(tiny_dirs[("gpt2", "bpe", False)])
    assert cli.main(["shift", "--base", base_dir, "--tuned", base_dir, "--prompts", str(tmp_path / "none.txt")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["shift", "--base", base_dir]) == 1
    assert "--tuned or --adapter" in capsys.readouterr().err
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    assert cli.main(["shift", "--base", base_dir, "--tuned", base_dir, "--prompts", str(empty)]) == 1
    assert "no prompts" in capsys.readouterr().err
