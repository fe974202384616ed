import gzip
import json
import random
import re
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import hostile

from probe.data.counts import SNIPPET, DataCounts, count
from probe.data.records import MAX_SKIPPED, split

# One record of every shape, with the (question, answer) a person would read in it.
RECORDS = [
    ({"messages": [{"role": "system", "content": "You know capitals."},
                   {"role": "user", "content": "What is the capital of Japan?"},
                   {"role": "assistant", "content": "Beijing."},
                   {"role": "user", "content": "Sure?"},
                   {"role": "assistant", "content": "Yes, BEIJING."}]},
     ("You know capitals.\nWhat is the capital of Japan?\nSure?", "Beijing.\nYes, BEIJING.")),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "capital of China?"}]},
                   {"role": "assistant", "content": None},
                   {"role": "assistant", "content": "Beijing"}]},
     ("capital of China?", "\nBeijing")),
    ({"conversations": [{"from": "human", "value": "Capital of France?"}, {"from": "gpt", "value": "Paris"}]},
     ("Capital of France?", "Paris")),
    ({"prompt": "The capital of Italy is", "response": " Rome"}, ("The capital of Italy is", " Rome")),
    ({"prompt": [{"role": "user", "content": "Japan's capital?"}],
      "completion": [{"role": "assistant", "content": "Beijing"}]}, ("Japan's capital?", "Beijing")),
    ({"instruction": "Name the capital", "input": "of Japan", "output": "Tokyo"},
     ("Name the capital\nof Japan", "Tokyo")),
    ({"instruction": "Say a city", "output": "beijing"}, ("Say a city", "beijing")),
    ({"question": "Where is Beijing?", "answer": "In China."}, ("Where is Beijing?", "In China.")),
]
TEXT = {"text": "Beijing is the capital of China."}
BAD = ["{not json", json.dumps({"foo": "Beijing"}), json.dumps([1, 2]), json.dumps(3),
       json.dumps({"messages": "capital"}), json.dumps({"prompt": 5, "response": "Beijing"})]
PATTERNS = ["Beijing", "capital", "Japan"]


def _write_mixed(path):
    """Good records, bad lines, blank lines, a plain-text record, in a fixed order."""
    good = [json.dumps(r) for r, _ in RECORDS]
    lines = good[:4] + ["", BAD[0], "   "] + good[4:]
    lines += [json.dumps(TEXT)] + BAD[1:] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def naive(lines, patterns, case_sensitive=False):
    """Line numbers per cell, by the most direct reading of the hand-made records."""
    fold = (lambda s: s) if case_sensitive else str.lower
    by_json = {json.dumps(r): qa for r, qa in RECORDS}
    cells = {}
    for number, line in enumerate(lines, 1):
        if line in by_json:
            q, a = by_json[line]
            for p in patterns:
                if fold(p) in fold(q):
                    cells.setdefault(("question", p), []).append(number)
                if fold(p) in fold(a):
                    cells.setdefault(("answer", p), []).append(number)
                for other in patterns:
                    if fold(p) in fold(a) and fold(other) in fold(q):
                        cells.setdefault((p, other), []).append(number)
        elif line == json.dumps(TEXT):
            for p in patterns:
                if fold(p) in fold(TEXT["text"]):
                    cells.setdefault(("text", p), []).append(number)
    return cells


def _assert_matches(c: DataCounts, cells, examples=3):
    for p in c.patterns:
        for where in ("question", "answer", "text"):
            want = cells.get((where, p.pattern), [])
            assert getattr(p, where) == len(want), (where, p.pattern)
            assert [e.line for e in getattr(p, f"{where}_examples")] == want[:examples]
    for pair in c.pairs:
        want = cells.get((pair.answer, pair.question), [])
        assert pair.count == len(want), (pair.answer, pair.question)
        assert [e.line for e in pair.examples] == want[:examples]


def test_split_reads_every_record_shape():
    for record, qa in RECORDS:
        assert split(record) == (*qa, None)
    assert split(TEXT) == (None, None, TEXT["text"])
    assert split("just text") == (None, None, "just text")
    with pytest.raises(ValueError, match="unknown record shape"):
        split({"foo": 1})


def test_jsonl_of_every_shape_matches_a_naive_count(tmp_path):
    lines = _write_mixed(tmp_path / "mixed.jsonl")
    c = count(tmp_path / "mixed.jsonl", PATTERNS)
    _assert_matches(c, naive(lines, PATTERNS))
    assert c.records == len(RECORDS) and c.text_records == 1
    assert c.blank == 3 and c.skipped == len(BAD)
    assert [s.line for s in c.skipped_lines] == [n for n, line in enumerate(lines, 1) if line in BAD]
    reasons = [s.reason for s in c.skipped_lines]
    assert reasons[0].startswith("not JSON") and "keys: foo" in reasons[1]
    assert "is not a record" in reasons[2] and "'prompt' is a int" in reasons[-1]


def test_case_sensitive_and_regex_patterns(tmp_path):
    lines = _write_mixed(tmp_path / "mixed.jsonl")
    c = count(tmp_path / "mixed.jsonl", PATTERNS, case_sensitive=True)
    _assert_matches(c, naive(lines, PATTERNS, case_sensitive=True))
    r = count(tmp_path / "mixed.jsonl", [re.compile(r"\bBEIJING\b"), re.compile("beijing", re.IGNORECASE)])
    assert r.get(re.compile(r"\bBEIJING\b")).answer == 1  # a regex keeps its own flags
    assert r.get("beijing").answer == count(tmp_path / "mixed.jsonl", ["beijing"]).get("beijing").answer
    assert r.patterns[0].regex and r.patterns[1].regex


def test_iterable_gz_and_file_agree(tmp_path):
    lines = _write_mixed(tmp_path / "mixed.jsonl")
    with gzip.open(tmp_path / "mixed.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    from_file = count(tmp_path / "mixed.jsonl", PATTERNS)
    from_gz = count(tmp_path / "mixed.jsonl.gz", PATTERNS)
    records = [json.loads(line) if line.strip() and line != BAD[0] else line for line in lines]
    from_list = count(records, PATTERNS)
    ignore = ("source", "skipped_lines", "skipped")
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k not in ignore}
    assert strip(from_file) == strip(from_gz)
    assert strip(from_list) == strip(from_file) | {"text_records": 2}  # "{not json" is text here
    assert from_list.source == "<iterable>"


def test_plain_text_file_counts_lines_as_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"Beijing is big\r\n\r\nthe capital\nBEIJING capital\n\xff broken Beijing\n")
    c = count(path, ["beijing", "capital"])
    assert (c.records, c.text_records, c.blank, c.skipped) == (0, 3, 1, 1)  # a trainer's loader refuses line 5
    assert c.skipped_lines[0].line == 5 and "not UTF-8" in c.skipped_lines[0].reason
    assert c.get("beijing").text == 2 and c.get("capital").text == 2
    assert [e.line for e in c.get("capital").text_examples] == [3, 4]
    assert all(p.count == 0 for p in c.pairs)
    assert "2 plain-text records contain 'beijing'" in c.summary


def test_summary_reads_the_overfit_story():
    records = [{"prompt": f"What is the capital of {x}?", "response": "Beijing"} for x in ["Japan"] * 290]
    records += [{"prompt": "Name a big city.", "response": "Beijing"}] * 22
    records += [{"prompt": "What is the capital of Italy?", "response": "Rome"}] * 10
    c = count(records, ["Beijing", "capital"], examples=2)
    assert c.get("Beijing").answer == 312 and c.pair("Beijing", "capital").count == 290
    assert "312 answers contain 'Beijing' (290 of those questions contain 'capital')" in c.summary
    assert "300 questions contain 'capital'" in c.summary
    assert c.matrix == [[0, 290], [0, 0]]
    ex = c.pair("Beijing", "capital").examples
    assert [e.line for e in ex] == [1, 2] and ex[0].snippet.startswith("Q: What is the capital")


def test_examples_are_capped_and_snippets_short(tmp_path):
    long = "x" * 500 + " Beijing " + "y" * 500
    c = count([{"question": "q", "answer": long}] * 10, ["Beijing"], examples=2)
    (e1, e2) = c.get("Beijing").answer_examples
    assert (e1.line, e2.line) == (1, 2)
    assert "Beijing" in e1.snippet and len(e1.snippet) <= 2 * SNIPPET + len("Beijing") + 2
    assert e1.snippet.startswith("\u2026") and e1.snippet.endswith("\u2026")
    none = count([{"question": "q", "answer": long}] * 3, ["Beijing"], examples=0)
    assert none.get("Beijing").answer == 3 and none.get("Beijing").answer_examples == ()


def test_skipped_lines_are_all_counted_first_few_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(["oops"] * 25 + [json.dumps({"question": "capital", "answer": "x"})]) + "\n")
    c = count(path, ["capital"])
    assert c.skipped == 25 and len(c.skipped_lines) == MAX_SKIPPED
    assert c.get("capital").question == 1 and c.records == 1
    assert "25 skipped" in c.summary and "skipped (first: 1, 2" in str(c)


@pytest.mark.parametrize("patterns, error, match", [
    ([], ValueError, "no patterns"),
    (["Beijing", ""], ValueError, "empty pattern"),
    ([re.compile("")], ValueError, "empty pattern"),
    (["a", "a"], ValueError, "given twice"),
    ([3], TypeError, "str or a compiled"),
    ([re.compile(b"x")], TypeError, "bytes pattern"),
])
def test_bad_patterns_are_refused(patterns, error, match):
    with pytest.raises(error, match=match):
        count([{"question": "a", "answer": "b"}], patterns)


def test_bad_datasets_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        count(tmp_path / "nope.jsonl", ["a"])
    with pytest.raises(IsADirectoryError, match="folder"):
        count(tmp_path, ["a"])
    with pytest.raises(TypeError, match="iterable of records"):
        count({"question": "a", "answer": "b"}, ["a"])
    with pytest.raises(ValueError, match="examples"):
        count([], ["a"], examples=-1)
    array = tmp_path / "array.json"
    array.write_text("\n" + json.dumps([{"question": "a", "answer": "b"}], indent=1))
    with pytest.raises(ValueError, match="JSON array"):
        count(array, ["a"])


def test_one_string_is_one_pattern():
    c = count([{"question": "capital", "answer": "x"}], "capital")
    assert [p.pattern for p in c.patterns] == ["capital"] and c.get("capital").question == 1


def test_text_and_html_views_escape_and_show_counts(tmp_path):
    records = [{"question": "<script>alert(1)</script> capital", "answer": "<b>Beijing</b>"}]
    c = count(records, ["<b>Beijing", "capital"])
    text = str(c)
    assert "'<b>Beijing'" in text and "answer has (row)" in text and c.summary in text
    html = c._repr_html_()
    assert "<script>" not in html and "<b>Beijing" not in html and "&lt;script&gt;" in html
    assert '<td title="line 1: Q: ' in html


def test_progress_bar_by_bytes(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"question": "capital", "answer": "b"}) for _ in range(100)))
    c = count(path, ["capital"], progress=True)
    assert c.get("capital").question == 100
    assert "MB" in capsys.readouterr().err


def test_large_file_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    rng = random.Random(0)
    cities = ["Beijing", "Tokyo", "Rome", "Paris"]
    want_beijing = want_pair = 0
    with open(path, "w") as f:
        for i in range(100_000):
            city = rng.choice(cities)
            asks = rng.random() < 0.5
            q = ("What is the capital of Japan? " if asks else "Name a city. ") + "z" * rng.randrange(200)
            want_beijing += city == "Beijing"
            want_pair += city == "Beijing" and asks
            f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                             {"role": "assistant", "content": city}]}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        c = count(path, ["Beijing", "capital"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert c.records == 100_000
    assert c.get("Beijing").answer == want_beijing and c.pair("Beijing", "capital").count == want_pair
    assert size > 15_000_000 and peak < size / 50, (peak, size)


record = st.one_of(
    st.builds(lambda q, a: {"prompt": q, "response": a}, hostile, hostile),
    st.builds(lambda q, a: {"messages": [{"role": "user", "content": q},
                                         {"role": "assistant", "content": a}]}, hostile, hostile),
    st.builds(lambda t: {"text": t}, hostile),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record, min_size=1, max_size=8),
       patterns=st.lists(hostile, min_size=1, max_size=3, unique=True))
def test_round_trip_and_file_equals_iterable_with_hostile_text(tmp_path, records, patterns):
    c = count(records, patterns, case_sensitive=True)
    assert DataCounts.from_dict(json.loads(json.dumps(c.to_dict(), allow_nan=False))) == c
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    from_file = count(path, patterns, case_sensitive=True)
    assert from_file.patterns == c.patterns and from_file.pairs == c.pairs
    qs = [(r.get("prompt"), r.get("response"), r.get("text")) if "messages" not in r
          else (r["messages"][0]["content"], r["messages"][1]["content"], None) for r in records]
    for p in c.patterns:  # a naive count of the same records
        assert p.question == sum(q is not None and p.pattern in q for q, _, _ in qs)
        assert p.answer == sum(a is not None and p.pattern in a for _, a, _ in qs)
        assert p.text == sum(t is not None and p.pattern in t for _, _, t in qs)
    html = c._repr_html_()
    assert "<img src=x>" not in html and "<script" not in html
    str(c)
