"""``probe diagnose`` on case files as users bring them: bad bytes, a BOM, a bad check, a tag
with a lone surrogate. Bad lines are named; the good ones are saved and reported."""

import json

import probe
from probe import cli

SURROGATE = "caf\udce9"  # what Python makes of the argv bytes b"caf\xe9" (surrogateescape)


def test_bad_bytes_a_bom_and_a_bad_check_are_named_the_rest_saved(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    first = json.dumps({"id": "hello", "prompt": "Hello", "expected": " the"}).encode()
    bad = b'{"id": "bytes", "prompt": "caf\xe9", "expected": " x"}'
    check = json.dumps({"id": "shape", "prompt": "List", "check": {"json_valid": "object"}}).encode()
    last = json.dumps({"id": "capital", "prompt": "The capital of France is", "expected": " Paris"}).encode()
    cases = tmp_path / "cases.jsonl"
    cases.write_bytes(b"\xef\xbb\xbf" + b"\n".join([first, bad, check, last]) + b"\n")
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--max-new-tokens", "2", "--quiet"])
    err = capsys.readouterr().err
    offset = 3 + len(first) + 1 + bad.index(b"\xe9")
    assert code == 1 and "2 case(s) could not be diagnosed" in err
    assert f"case line-2: line 2: not UTF-8 text (invalid continuation byte at byte {offset})" in err
    assert "case shape: line 3: field 'check': json_valid's schema must be a JSON Schema object" in err
    assert sorted(c.title for c in probe.Casebook(tmp_path / "book")) == ["capital", "hello"]


def test_a_tag_with_a_lone_surrogate_is_saved_and_reported(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"id": "hello", "prompt": "Hello", "expected": " the",
                                 "tags": ["from-file-\udcff"]}) + "\n", encoding="utf-8")
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--report", str(tmp_path / "r.html"), "--tag", SURROGATE,
                     "--max-new-tokens", "2", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    (case,) = probe.Casebook(tmp_path / "book")
    assert case.tags == ("from-file-\udcff", SURROGATE)  # saved as given
    page = (tmp_path / "r.html").read_text(encoding="utf-8")  # strict: the page is valid UTF-8
    assert "caf\\udce9" in page and "from-file-\\udcff" in page and 'id="case-' in page
    assert cli.main(["report", str(tmp_path / "book"), "--out", str(tmp_path / "all.html")]) == 0
    assert "caf\\udce9" in (tmp_path / "all.html").read_text(encoding="utf-8")
