"""Casebook: one file per case plus an index; atomic saves; bad files reported, not fatal."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import probe
from probe.cases.case import SCHEMA, Case
from probe.engine.trace import Alternative, TokenStep, TokenTrace


def make_case(case_id: str, verdict="lost", tags=("capitals",), size: int = 1, note="") -> Case:
    step = TokenStep(index=0, id=1, text=" Paris", start=0, end=6, logprob=-0.5, prob=0.6, rank=1,
                     entropy=1.0, top=(Alternative(1, " Paris", 0.6, -0.5),))
    trace = TokenTrace(prompt="The capital of France is" * size, text=" Paris", steps=(step,))
    return Case.from_result(trace, id=case_id, verdict=verdict, tags=tags, note=note)


def test_add_get_list_filter_remove(tmp_path):
    book = probe.Casebook(tmp_path / "book")
    assert len(book) == 0 and book.list() == [] and not (tmp_path / "book").exists()
    a = book.add(make_case("a", "lost", ("capitals",), note="first"))
    b = book.add(make_case("b", "never_had", ("math",)))
    c = book.add(make_case("c", "lost", ("math", "capitals")))
    assert len(book) == 3 and "a" in book and "zzz" not in book and "../x" not in book
    assert book.get("b") == b
    assert [s.id for s in book.list(verdict="lost")] == ["a", "c"]
    assert [s.id for s in book.list(tag="math")] == ["b", "c"]
    assert book.filter(verdict="lost", tag="math") == [c]
    assert book.verdicts() == {"lost": 2, "never_had": 1} and book.tags()["capitals"] == 2
    assert sorted(x.id for x in book) == ["a", "b", "c"]
    book.remove("a")
    assert "a" not in book and len(book) == 2
    with pytest.raises(KeyError, match="no case 'a'"):
        book.get("a")
    with pytest.raises(KeyError):
        book.remove("a")
    assert a.id == "a"


def test_same_id_needs_overwrite(tmp_path):
    book = probe.Casebook(tmp_path)
    book.add(make_case("x", note="old"))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        book.add(make_case("x", note="new"))
    assert book.get("x").note == "old"
    book.add(make_case("x", note="new"), overwrite=True)
    assert book.get("x").note == "new" and book.list()[0].note == "new"


def test_bad_arguments_are_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        probe.Casebook(tmp_path / "file")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        probe.Casebook(tmp_path / "nope", create=False)
    with pytest.raises(TypeError, match="probe.Case"):
        probe.Casebook(tmp_path / "b").add({"id": "x"})
    with pytest.raises(ValueError, match="case id"):
        probe.Casebook(tmp_path / "b").get("../../etc/passwd")


def test_a_corrupt_or_newer_file_is_reported_and_the_rest_still_loads(tmp_path):
    book = probe.Casebook(tmp_path)
    for i in range(3):
        book.add(make_case(f"c{i}"))
    (tmp_path / "cases" / "c1.json").write_text('{"format": "probe.case", "schema": 1, "case": {')
    newer = json.loads((tmp_path / "cases" / "c2.json").read_text())
    newer["schema"] = SCHEMA + 1
    (tmp_path / "cases" / "c2.json").write_text(json.dumps(newer))
    again = probe.Casebook(tmp_path)
    assert [c.id for c in again] == ["c0"]
    messages = sorted(str(e) for e in again.errors)
    assert "c1.json" in messages[0] and "not valid JSON" in messages[0]
    assert "c2.json" in messages[1] and "newer probe" in messages[1]


def test_index_is_a_cache_rebuilt_when_missing_corrupt_or_stale(tmp_path):
    book = probe.Casebook(tmp_path)
    book.add(make_case("a", note="one"))
    index = tmp_path / "index.json"
    assert "a.json" in json.loads(index.read_text())["entries"]
    index.write_text("{broken")
    assert [s.id for s in probe.Casebook(tmp_path).list()] == ["a"]
    make_case("b").save(tmp_path / "cases" / "b.json")  # written behind the book's back
    make_case("a", note="changed").save(tmp_path / "cases" / "a.json")
    summaries = {s.id: s for s in probe.Casebook(tmp_path).list()}
    assert set(summaries) == {"a", "b"} and summaries["a"].note == "changed"
    index.unlink()
    assert len(probe.Casebook(tmp_path)) == 2 and index.exists()


# A zygote: imports probe once, then forks a writer per "go" line and reports its pid and its
# death, so that each writer starts in milliseconds and the test can kill it mid-save.
WRITER = textwrap.dedent("""
    import os, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    import probe
    from test_casebook import make_case
    book = probe.Casebook({folder!r})
    big = make_case("victim", note="new", size=100000)
    print("ready", flush=True)
    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                i = 0
                while True:  # overwrite an existing case (big: most time is spent writing), add new ones
                    book.add(big, overwrite=True)
                    if i % 5 == 0:
                        book.add(make_case(f"new-{{os.getpid()}}-{{i}}", size=1000))
                    i += 1
            finally:
                os._exit(1)
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("dead", flush=True)
""")


def test_killing_a_writer_mid_save_never_loses_or_corrupts_a_case(tmp_path):
    """SIGKILL writers in a loop, each the moment its save's temp file exists (plus 0-10 ms, so
    kills land while writing, syncing or renaming); after each, every case is there and whole."""
    import random

    book = probe.Casebook(tmp_path / "book")
    keep = [book.add(make_case(f"keep-{i}", note=f"kept {i}")) for i in range(5)]
    old_victim = book.add(make_case("victim", note="old", size=100000))
    root = os.path.dirname(os.path.dirname(os.path.abspath(probe.__file__)))
    script = WRITER.format(root=root, tests=os.path.dirname(os.path.abspath(__file__)), folder=str(book.folder))
    temp = lambda: {p.name for p in book.cases_dir.iterdir() if p.name.startswith(".")}  # noqa: E731
    rng = random.Random(0)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    kills = mid_save = 0
    try:
        assert proc.stdout.readline().strip() == b"ready"
        started = time.monotonic()
        # ten kills took 2.8-4.4 s in 9 runs at load average 15-19 on 2 cores; the cap only ends
        # a stuck loop. It was 6 s, which made the kill count depend on the machine's load: one
        # run in 15 failed at a load spike (66 s instead of ~20; its message was not kept, so
        # kills < 5 is the likely, not the proven, cause)
        while kills < 10 and time.monotonic() - started < 60:
            before = temp()
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            deadline = time.monotonic() + 3
            while not temp() - before and time.monotonic() < deadline:
                pass  # spin until a save is under way
            time.sleep(rng.uniform(0, 0.01))
            os.kill(pid, signal.SIGKILL)
            assert proc.stdout.readline().strip() == b"dead"
            kills += 1
            mid_save += bool(temp() - before)  # its temp file is left: killed mid-save
            again = probe.Casebook(book.folder)
            assert again.errors == []  # no half-written file is ever visible as a case
            for case in keep:
                assert again.get(case.id) == case
            victim = again.get("victim")
            assert victim.note in ("old", "new") and victim.prompt == old_victim.prompt
            for summary in again.list():
                assert again.get(summary.id).id == summary.id  # every listed case loads whole
    finally:
        proc.kill()
        proc.wait()
    assert kills >= 5 and mid_save >= kills // 2, f"{mid_save} of {kills} kills landed mid-save"
