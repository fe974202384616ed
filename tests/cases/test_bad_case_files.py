"""Whatever a user's casebook folder holds, probe names the bad files and shows the rest."""

import json
import time

import jsonschema
import pytest

import probe
from builders import fake_case
from probe import cli
from probe.cases.case import new_id
from probe.cases.schema import CASE_SCHEMA, SCHEMA_PATH

SURROGATE = "caf\udce9"  # what errors="surrogateescape" makes of b"caf\xe9"


def _good_text(case_id="x"):
    return fake_case(case_id).to_json()


def _set(text: str, field: str, raw: str) -> str:
    """A case file's text with ``case[field]`` set to the raw JSON ``raw``."""
    data = json.loads(text)
    data["case"][field] = "@@@"
    return json.dumps(data).replace('"@@@"', raw)


def _bad_files() -> dict[str, str]:
    """file name -> text that parses badly in Python or holds fields of the wrong types."""
    good = _good_text("bad")
    steps = json.loads(good)["case"]["results"]["diagnosis"]["data"]["runs"][0]["trace"]["steps"]
    assert "rank" in steps[0]  # an int field of a result
    deep_int = good.replace('"rank": 1', '"rank": 1e999', 1)
    huge_int = good.replace('"rank": 1', '"rank": ' + "9" * 5000, 1)
    return {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-inside.json": _set(good, "note", "[" * 50_000 + "]" * 50_000),
        "overflow.json": deep_int,
        "huge-int.json": huge_int,
        "prompt-number.json": _set(good, "prompt", "5"),
        "prompt-numbers.json": _set(good, "prompt", "[1, 2, 3]"),
        "verdict-number.json": _set(good, "verdict", "3"),
        "tags-numbers.json": _set(good, "tags", "[1]"),
        "truncated.json": good[: len(good) // 2],
    }


@pytest.fixture
def book(tmp_path):
    book = probe.Casebook(tmp_path / "book")
    book.add(fake_case("good-1", "lost", note="first"))
    book.add(fake_case("good-2", "never_had"))
    for name, text in _bad_files().items():
        (book.cases_dir / name).write_text(text, encoding="utf-8")
    return book


def test_every_bad_file_is_named_and_skipped_the_rest_list_and_report(book, tmp_path):
    again = probe.Casebook(book.folder)
    assert [s.id for s in again.list()] == ["good-1", "good-2"]
    named = {e.path.rsplit("/", 1)[-1]: e.reason for e in again.errors}
    assert set(named) == set(_bad_files())
    assert "JSON that Python cannot hold (RecursionError" in named["deep.json"]
    assert "ValueError" in named["huge-int.json"] and "digits" in named["huge-int.json"]
    assert "OverflowError" in named["overflow.json"]
    assert "field case.prompt: 5" in named["prompt-number.json"]
    assert "field case.prompt.0: 1 should be object" in named["prompt-numbers.json"]
    assert "field case.verdict: 3 should be string or null" in named["verdict-number.json"]
    assert "field case.tags.0: 1 should be string" in named["tags-numbers.json"]
    assert "not valid JSON" in named["truncated.json"]
    out = again.to_html(tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert 'id="case-good-1"' in html and 'id="case-good-2"' in html
    assert all(name in html for name in _bad_files())


def test_probe_report_names_the_bad_files_and_reports_the_rest(book, tmp_path, capsys):
    code = cli.main(["report", str(book.folder), "--out", str(tmp_path / "r.html")])
    captured = capsys.readouterr()
    assert code == 0 and "2 of 2 case(s)" in captured.out
    assert all(f"{name}:" in captured.err for name in _bad_files())
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count("<section ") == 2


def test_a_case_that_cannot_be_shown_is_named_on_the_page_the_others_shown(tmp_path):
    from dataclasses import replace

    from probe.render.report import casebook_html

    broken = replace(fake_case("broken"), prompt=5)  # built in Python, past the file checks
    page = casebook_html([fake_case("fine"), broken])
    assert 'id="case-fine"' in page and 'id="case-broken"' not in page
    assert "case broken: cannot be shown (TypeError" in page and "1 of 1 case" not in page
    assert page.count("<section ") == 1


def test_the_shipped_schema_is_valid_and_read_from_the_package():
    assert SCHEMA_PATH.name == "case.schema.json" and SCHEMA_PATH.parent.name == "cases"
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    # A newer-schema file is refused by its version, not by a field it may have added.
    text = json.loads(_good_text())
    text["schema"] = 99
    with pytest.raises(probe.CaseFileError, match="newer probe"):
        probe.Case.from_json(json.dumps(text))


def test_the_schema_accepts_cases_of_every_shape():
    from builders import fake_shift, fake_trace

    chat = [{"role": "system", "content": "Be short."}, {"role": "user", "content": "Capital?"}]
    cases = [fake_case("d"), probe.Case.from_result(fake_trace([" a", " b"])),
             probe.Case.from_result(fake_shift()),
             probe.Case.from_result(fake_trace([" a"]), prompt=chat, tags=["x"], note=SURROGATE),
             probe.Case.from_result({"one": fake_trace([" a"]), "two": fake_trace([" b"])}, verdict=None)]
    for case in cases:
        jsonschema.validate(json.loads(case.to_json()), CASE_SCHEMA)
        assert probe.Case.from_json(case.to_json()) == case


def test_lone_surrogates_are_saved_loaded_and_every_view_encodes(tmp_path):
    case = fake_case("s", tags=("capitals", SURROGATE), note=f"seen in {SURROGATE}")
    book = probe.Casebook(tmp_path / "book")
    book.add(case)
    back = book.get("s")
    assert back == case and back.note == f"seen in {SURROGATE}"  # saved exactly
    for view in (str(back), back._repr_html_(), back.results["diagnosis"]._repr_html_()):
        view.encode("utf-8")  # a notebook or terminal can write it
    assert "caf\\udce9" in str(back) and "caf\\udce9" in back._repr_html_()
    page = book.to_html(tmp_path / "r.html").read_text(encoding="utf-8")  # strict UTF-8 read
    assert "caf\\udce9" in page and 'id="case-s"' in page


def test_default_ids_never_collide_however_fast_cases_are_made():
    from builders import fake_trace

    trace = fake_trace([" a"])
    start = time.monotonic()
    ids = [probe.Case.from_result(trace).id for _ in range(3000)]
    assert len(set(ids)) == 3000, f"{3000 - len(set(ids))} repeated ids in {time.monotonic() - start:.2f} s"
    assert len({new_id("same") for _ in range(100_000)}) == 100_000


def test_a_cases_path_that_is_a_file_is_an_error_naming_it(tmp_path, capsys):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "cases").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="cases' is a file"):
        probe.Casebook(tmp_path / "book")
    code = cli.main(["report", str(tmp_path / "book"), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 1 and str(tmp_path / "book" / "cases") in err and "is a file" in err
    assert not (tmp_path / "r.html").exists()


def test_a_corrupt_index_is_rebuilt_from_the_case_files(tmp_path):
    book = probe.Casebook(tmp_path / "book")
    book.add(fake_case("a"))
    index = json.loads(book.index_path.read_text())
    index["entries"]["a.json"]["summary"] = {"id": 5}  # a bad summary under a current key
    book.index_path.write_text(json.dumps(index))
    assert [s.id for s in probe.Casebook(book.folder).list()] == ["a"]
    book.index_path.write_text("[" * 100_000)
    assert [s.id for s in probe.Casebook(book.folder).list()] == ["a"]


def test_a_diagnosis_with_fields_of_the_wrong_type_is_named():
    data = json.loads(_good_text("d"))
    data["case"]["results"]["diagnosis"]["data"]["prompt"] = 5
    with pytest.raises(probe.CaseFileError, match=r"field case\.results\.diagnosis\.data\.prompt: 5"):
        probe.Case.from_json(json.dumps(data), "d.json")
    data = json.loads(_good_text("d"))
    data["case"]["results"]["diagnosis"]["data"]["tags"] = [1]
    with pytest.raises(probe.CaseFileError, match=r"data\.tags\.0: 1 should be string"):
        probe.Case.from_json(json.dumps(data), "d.json")
