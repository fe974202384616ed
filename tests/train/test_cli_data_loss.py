"""probe data-loss: a case file and a report from a training set; bad input is exit 1 with the reason."""

import json

import probe
from builders import EVIL, make_adapter
from probe import cli


def test_data_loss_command_writes_case_and_report(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("llama", "unigram", True)])
    adapter = make_adapter(src, tmp_path / "a")
    data = tmp_path / "train.jsonl"
    recs = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
             "source": EVIL},
            {"prompt": "Name a colour:", "completion": " red", "source": "b"}, "not json"]
    data.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in recs) + "\n")
    out, page = tmp_path / "loss.json", tmp_path / "loss.html"
    code = cli.main(["data-loss", str(data), "--base", src, "--adapter", str(adapter), "--channel", "source",
                     "--out", str(out), "--report", str(page)])
    assert code == 0
    got = probe.Case.load(out).results["data_loss"]
    assert len(got) == 2 and got.skipped == 1 and {c.name for c in got.channels} == {EVIL, "b"}
    assert got.max_length == 1024 and got.truncated == 0  # TRL's default
    assert cli.main(["data-loss", str(data), "--base", src, "--adapter", str(adapter), "--max-length", "4",
                     "--out", str(out)]) == 0
    cut = probe.Case.load(out).results["data_loss"]
    assert cut.max_length == 4 and cut.truncated == 1 and [e.n_tokens for e in cut.examples] == [4]
    assert "nothing to score in the first max_length=4 tokens" in cut.skipped_lines[0].reason  # the prompt fills them
    assert cli.main(["data-loss", str(data), "--base", src, "--adapter", str(adapter), "--max-length", "none",
                     "--out", str(out)]) == 0
    assert probe.Case.load(out).results["data_loss"].max_length is None
    assert cli.main(["data-loss", str(data), "--base", src, "--adapter", str(adapter), "--max-length", "0"]) == 1
    assert "--max-length must be" in capsys.readouterr().err
    html = page.read_text()
    assert EVIL not in html and "by token kind" in html
    assert cli.main(["data-loss", str(tmp_path / "missing.jsonl"), "--base", src, "--adapter", str(adapter)]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("\n")
    assert cli.main(["data-loss", str(tmp_path / "empty.jsonl"), "--base", src, "--adapter", str(adapter)]) == 1
    assert "no example to score" in capsys.readouterr().err
