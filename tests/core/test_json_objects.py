"""probe.core.lines.json_objects: the one JSON Lines reader of log files (lm-eval samples,
LLaMA-Factory logs): a BOM and blank lines are read through, every bad line is an error naming it."""

import pytest

from probe.core.lines import json_objects


class LogError(ValueError):
    pass


def test_objects_come_with_their_line_numbers_a_bom_and_blank_lines_read_through(tmp_path):
    f = tmp_path / "log.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"step": 1}\n\n   \n{"step": 2}\n')
    assert list(json_objects(f, LogError)) == [(1, {"step": 1}), (4, {"step": 2})]


@pytest.mark.parametrize("line,why", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"a": "\xff"}', "not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "JSON Python cannot hold"),
])
def test_a_bad_line_raises_the_callers_error_naming_file_and_line(tmp_path, line, why):
    f = tmp_path / "log.jsonl"
    f.write_bytes(b'{"step": 1}\n' + line + b"\n")
    with pytest.raises(LogError, match=rf"log\.jsonl, line 2.*{why}"):
        list(json_objects(f, LogError))
