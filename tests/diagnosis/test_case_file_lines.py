"""Case files as users bring them: bad bytes, a BOM, checks of the wrong shape, JSON Python
cannot hold. Each bad line is named (with what was expected); the other lines are read."""

import json

import pytest

from probe.diagnosis.checks import as_check
from probe.diagnosis.failure import FailedCase
from probe.diagnosis.run import CaseSpec, read_cases

GOOD = json.dumps({"id": "good", "prompt": "Hello", "expected": " the"})


def _read(tmp_path, data: bytes):
    path = tmp_path / "cases.jsonl"
    path.write_bytes(data)
    return read_cases(path)


def test_a_line_of_invalid_utf8_is_named_with_its_byte_offset_the_rest_read(tmp_path):
    bad = b'{"id": "bad", "prompt": "caf\xe9", "expected": "x"}'
    items = _read(tmp_path, GOOD.encode() + b"\n" + bad + b"\n" + GOOD.replace("good", "after").encode() + b"\n")
    assert [type(i) for i in items] == [CaseSpec, FailedCase, CaseSpec]
    failed = items[1]
    offset = len(GOOD) + 1 + bad.index(b"\xe9")
    assert (failed.id, failed.line) == ("line-2", 2)
    assert str(failed) == f"case line-2: line 2: not UTF-8 text (invalid continuation byte at byte {offset})"
    assert [items[0].id, items[2].id] == ["good", "after"]


def test_a_byte_order_mark_is_stripped_like_probe_data_does(tmp_path):
    items = _read(tmp_path, b"\xef\xbb\xbf" + GOOD.encode() + b"\r\n")
    assert [i.id for i in items] == ["good"] and isinstance(items[0], CaseSpec)


@pytest.mark.parametrize("check,expected", [
    ({"json_valid": "object"}, "json_valid's schema must be a JSON Schema object such as "
                               '{"type": "object"}, got str \'object\''),
    ({"json_valid": {"properties": []}}, "json_valid's schema.properties must be an object of schemas "
                                         "(name -> schema), got list []"),
    ({"json_valid": {"properties": {"a": {"required": "a"}}}},
     "json_valid's schema.properties.a.required must be a list of strings, got 'a'"),
    ({"json_valid": {"items": 3}}, "json_valid's schema.items must be a JSON Schema object"),
    ({"json_valid": {"type": "dict"}}, "json_valid's schema.type: unknown JSON schema type 'dict'"),
])
def test_a_check_of_the_wrong_shape_is_named_before_any_model_runs(tmp_path, check, expected):
    line = json.dumps({"id": "c", "prompt": "List colors.", "check": check})
    items = _read(tmp_path, (GOOD + "\n" + line + "\n").encode())
    assert isinstance(items[0], CaseSpec) and isinstance(items[1], FailedCase)
    assert (items[1].id, items[1].line, items[1].field) == ("c", 2, "check")
    assert expected in items[1].message
    with pytest.raises(ValueError, match="json_valid's schema"):
        as_check(check)


def test_a_good_json_valid_schema_still_checks():
    check = as_check({"json_valid": {"type": "object", "required": ["a"],
                                     "properties": {"a": {"type": "array", "items": {"type": "integer"}}}}})
    assert check('{"a": [1, 2]}').passed and not check('{"a": ["x"]}').passed


def test_json_python_cannot_hold_is_a_named_line(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    huge = '{"id": "' + "x" + '", "prompt": "p", "expected": ' + "9" * 5000 + "}"
    items = _read(tmp_path, "\n".join([deep, huge, GOOD]).encode())
    assert [type(i) for i in items] == [FailedCase, FailedCase, CaseSpec]
    assert "RecursionError" in items[0].message and items[0].line == 1
    assert "ValueError" in items[1].message and items[1].line == 2
