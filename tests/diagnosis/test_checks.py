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


# -- the default check of an expected answer: answer() ------------------------------------------

@pytest.mark.parametrize("expected,text,ok", [
    ("cheetah", "The Cheetah is the fastest land animal.", True),   # case
    ("Cheetah", "THE CHEETAH", True),
    ("Can", "Canberra is the capital.", False),                     # not inside a longer word
    ("Canberra", "It is Canberra.", True),
    ("Paris", "Parisian cafés", False),
    ("391", "17 * 23 = 391.", True),
    ("391", "3910", False),                                         # nor inside a longer number
    ("391", "391.5", False),
    ("391", "1,391", False),
    ("Straße", "STRASSE", True),                                    # casefold, not lower()
    ("fi", "\ufb01", True),                                         # NFKC: the ligature is "fi"
    ("Tokyo", "\uff34\uff4f\uff4b\uff59\uff4f", True),              # full-width letters
    ("New York", "new\n  york", True),                              # whitespace runs
    ("C++", "I like c++!", True),                                   # edges that are not letters
    ("东京", "日本的首都是东京。", True),                            # no spaces between CJK words
    ("서울", "수도는 서울입니다", True),                              # Korean particles attach
])
def test_answer_matches_what_a_person_means_by_the_answer_is(expected, text, ok):
    assert checks.answer(expected)(text).passed is ok


def test_answer_says_why_and_names_itself():
    r = checks.answer("Can")("Canberra")
    assert not r.passed and "only inside a longer word" in r.reason and r.name == "answer('Can')"
    assert "does not give 'Tokyo'" in checks.answer("Tokyo")("Beijing.").reason
    assert checks.answer("Tokyo").spec == {"answer": "Tokyo"}
    assert checks.as_check({"answer": "tokyo"})("TOKYO").passed
    with pytest.raises(ValueError, match="non-empty"):
        checks.answer("  ")


def test_an_expected_answer_defaults_to_answer_and_can_still_ask_for_exact():
    from probe.diagnosis.result import resolve_check

    default = resolve_check(None, "cheetah")
    assert default.name == "answer('cheetah')" and default("The Cheetah is fast.").passed
    exact = resolve_check("exact", "cheetah")
    assert exact.name == "contains('cheetah')" and not exact("The Cheetah is fast.").passed
    assert resolve_check("answer", "cheetah").name == "answer('cheetah')"
    with pytest.raises(ValueError, match="reads the expected answer"):
        resolve_check("exact", None)


def test_a_case_file_line_names_exact_or_answer_with_its_expected_answer(tmp_path):
    from probe.diagnosis.run import read_cases

    f = tmp_path / "cases.jsonl"
    f.write_text('{"id": "a", "prompt": "Q", "expected": "Paris", "check": "exact"}\n'
                 '{"id": "b", "prompt": "Q", "check": "exact"}\n', encoding="utf-8")
    good, bad = read_cases(f)
    assert good.check == "exact" and bad.field == "check" and "expected answer" in bad.message


def test_diagnose_records_the_check_it_used_and_its_spec(tiny_dirs):
    import probe
    from tests.builders import json_roundtrip

    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    text = probe.generate(lm, "The capital", max_new_tokens=6).text
    word = next(w for w in text.split() if w.isalpha())   # a word the model writes...
    flipped = word.swapcase()                             # ...asked for in the other case
    d = probe.diagnose(lm, lm, "The capital", expected=flipped, max_new_tokens=6)
    assert d.verdict == "ok" and d.check == f"answer({flipped!r})" and d.check_spec == {"answer": flipped}
    exact = probe.diagnose(lm, lm, "The capital", expected=flipped, check="exact", max_new_tokens=6)
    assert exact.verdict == "never_had" and exact.check_spec == {"contains": flipped}
    assert json_roundtrip(d).check_spec == {"answer": flipped}
    assert f"check: answer({flipped!r})" in str(d)
    assert "answer(" in d._repr_html_()
