"""Data files as users bring them: huge lines, null records, BOMs, bad bytes, truncated .gz."""

import gzip
import json
import os
import subprocess
import sys
import textwrap

import pytest

from probe.core.lines import MAX_LINE_BYTES, TruncatedFile, read_lines
from probe.data.counts import count

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QA = json.dumps({"question": "What is the capital of Japan?", "answer": "Beijing"})

PEAK = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import probe.data

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    before = peak_kib()
    c = probe.data.count({path!r}, ["Beijing", "capital"])
    print(json.dumps({{"growth_mib": (peak_kib() - before) / 1024, "records": c.records,
                      "skipped": [[s.line, s.reason] for s in c.skipped_lines]}}))
""")


def test_count_peak_memory_stays_bounded_with_a_huge_line(tmp_path):
    """One 40 MB record line among ordinary ones: the count's peak RSS growth, measured in a
    fresh process, stays under 64 MiB (it held the line 3-4 times over, ~150 MiB, before)."""
    path = tmp_path / "huge.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(1000):
            f.write(QA + "\n")
        f.write(json.dumps({"prompt": "capital?", "response": "Beijing \u00e9 " * 4_000_000}) + "\n")
        for _ in range(1000):
            f.write(QA + "\n")
    assert path.stat().st_size > 40_000_000
    out = subprocess.run([sys.executable, "-c", PEAK.format(root=ROOT, path=str(path))],
                         capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["growth_mib"] < 64, got["growth_mib"]
    assert got["records"] == 2000
    [[line, reason]] = got["skipped"]
    assert line == 1001 and "too long" in reason and f"{MAX_LINE_BYTES // 2**20} MiB" in reason


def test_blank_null_and_unknown_lines_are_counted_apart_and_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\ufeff" + QA + "\n   \t\n\nnull\n" + json.dumps({"foo": 1}) + "\n" + QA + "\n",
                    encoding="utf-8")
    c = count(path, ["Beijing"])
    assert (c.records, c.blank, c.skipped) == (2, 2, 2)  # the BOM'd first line is a record
    assert [(s.line, s.reason) for s in c.skipped_lines] == [
        (4, "null is not a record"), (5, "unknown record shape (keys: foo)")]


def test_json_python_cannot_hold_is_a_named_skip(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join([QA, "[" * 100_000 + "]" * 100_000, '{"answer": ' + "9" * 5000 + "}", QA]),
                    encoding="utf-8")
    c = count(path, ["Beijing"])
    assert c.records == 2 and [s.line for s in c.skipped_lines] == [2, 3]
    assert "RecursionError" in c.skipped_lines[0].reason and "ValueError" in c.skipped_lines[1].reason


def test_a_truncated_gz_names_the_file_and_last_line_and_keeps_the_counts(tmp_path):
    whole = gzip.compress(("\n".join([QA] * 5000) + "\n").encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    c = count(path, ["Beijing"])
    assert 0 < c.records < 5000 and c.get("Beijing").answer == c.records
    assert c.truncated == (f"{path}: the file ends mid-stream (Compressed file ended before the "
                           f"end-of-stream marker was reached); it is truncated or corrupt; the last whole "
                           f"line read is line {c.records}")
    assert c.truncated in c.summary and c.truncated in str(c)
    assert type(c).from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_the_line_reader_names_bad_bytes_by_line_and_offset(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\xef\xbb\xbfok\nbad \xff here\r\nlast")
    lines = list(read_lines(path))
    assert [(x.number, x.offset, x.text) for x in lines] == [(1, 0, "ok"), (2, 6, None), (3, 18, "last")]
    assert lines[1].error == "not UTF-8 text (invalid start byte at byte 10)"
    assert [x.text for x in read_lines(path, errors="replace")][1] == "bad \ufffd here"
    gz = tmp_path / "x.txt.gz"
    gz.write_bytes(gzip.compress(b"a\nb\n" * 100)[:20])
    with pytest.raises(TruncatedFile, match="x.txt.gz: the file ends mid-stream"):
        list(read_lines(gz))
