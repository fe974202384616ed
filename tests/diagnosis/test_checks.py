import pytest

from probe import checks


def test_contains_equals_regex_say_why():
    r = checks.contains("Paris")("The capital is Paris.")
    assert r.passed and "contains 'Paris'" in r.reason
    r = checks.contains("Paris")("It is Beijing.")
    assert not r.passed and "does not contain" in r.reason and "Beijing" in r.reason
    assert checks.contains("paris", case=False)("PARIS").passed
    assert checks.equals("4")(" 4\n").passed and not checks.equals("4")("14").passed
    assert checks.regex(r"\b391\b")("17 * 23 = 391").passed
    assert "no match" in checks.regex(r"^\d+$")("abc").reason


@pytest.mark.parametrize("text,ok", [
    ('{"capital": "Paris"}', True),
    ('Sure! Here it is:\n```json\n{"a": [1, 2]}\n```\nDone.', True),
    ("```json\n[1, 2, 3]", True),  # an unterminated fence still holds valid JSON
    ('The answer is {"a": 1} and more', True),
    ("{not json}", False),
    ("Paris", False),
    ('```json\n{"a": 1,\n```', False),
])
def test_json_valid_finds_the_first_json_value(text, ok):
    assert checks.json_valid()(text).passed is ok


def test_json_valid_with_schema():
    schema = {"type": "object", "required": ["capital"], "properties": {"capital": {"type": "string"}}}
    check = checks.json_valid(schema)
    assert check('{"capital": "Paris"}').passed
    bad = check('{"capital": 3}')
    assert not bad.passed and "$.capital should be string" in bad.reason
    assert "lacks required key 'capital'" in check("{}").reason
    with pytest.raises(ValueError, match="unknown JSON schema type"):
        checks.json_valid({"type": "dict"})


def test_as_check_accepts_specs_callables_and_checks():
    assert checks.as_check({"contains": "Paris"})("Paris").passed
    assert checks.as_check("json_valid")("[1]").passed
    assert checks.as_check(checks.json_valid)("[1]").passed
    assert checks.as_check({"json_valid": {"type": "array"}})("[1]").passed
    fn = checks.as_check(lambda t: t.isupper())
    assert fn("ABC").passed and not fn("abc").passed and "failed" in fn("abc").reason
    with pytest.raises(ValueError, match="exactly one"):
        checks.as_check({"nope": 1})
    with pytest.raises(TypeError, match="not a check"):
        checks.as_check(3)
    with pytest.raises(ValueError, match="bad regex"):
        checks.regex("(")
    with pytest.raises(TypeError):
        checks.contains("a")(None)
