"""The basics pack: the file is what its generator writes, every case is valid, each case's own
expected answer passes its own check, and wrong answers (other cases' answers, near numbers, the
prompt echoed back, "Beijing") fail it."""

import json
import re

import pytest

from probe.diagnosis.checks import as_check
from probe.diagnosis.run import CaseSpec
from probe.packs import basics_facts, make_basics
from probe.packs.basics import PACK, pack_cases

SPECS = pack_cases()
CHECKS = {c.id: as_check(c.check) for c in SPECS}
FACT_TAGS = {t for c in SPECS for t in c.tags} - {"instructions", "format", "json", "lists"}


def test_the_shipped_pack_is_what_its_generator_writes():
    assert PACK.read_text(encoding="utf-8") == make_basics.lines(make_basics.build()), \
        "run python -m probe.packs.make_basics"


def test_every_line_is_a_valid_case_with_expected_answer_explicit_check_and_tags():
    raw = [json.loads(line) for line in PACK.read_text(encoding="utf-8").splitlines()]
    assert len(raw) == len(SPECS) >= 300
    assert all(isinstance(c, CaseSpec) for c in SPECS)
    assert len({c.id for c in SPECS}) == len(SPECS)
    for d in raw:  # explicit: a change of the default check changes no verdict here
        assert d["check"] and d["expected"] and d["tags"], d["id"]
    tags = {t for c in SPECS for t in c.tags}
    assert {"capitals", "arithmetic", "units", "facts", "instructions", "json", "lists"} <= tags
    assert sum("capitals" in c.tags for c in SPECS) == len(basics_facts.CAPITALS)


@pytest.mark.parametrize("case", SPECS, ids=lambda c: c.id)
def test_each_case_expected_answer_passes_its_own_check_and_the_prompt_does_not(case):
    check = CHECKS[case.id]
    assert check(case.expected).passed, check(case.expected).reason
    assert not check(case.prompt).passed, "echoing the question back would pass"


def test_answers_phrased_as_a_model_would_pass():
    said = {"capital-france": "The capital of France is Paris.", "capital-australia": "canberra",
            "capital-ukraine": "It is Kiev.", "capital-brazil": "Brasilia", "capital-united-states":
            "Washington, D.C. is the capital.", "units-feet-per-mile": "There are 5,280 feet in a mile.",
            "science-what-is-the-chemical-formula-of-water": "Water is H₂O.",
            "count-how-many-legs-does-a-spider-have": "A spider has eight legs.",
            "format-json-city": 'Here: ```json\n{"city": "Paris", "country": "France"}\n```',
            "format-numbered-months": "1. January\n2. February\n3. March\n"}
    for cid, text in said.items():
        assert CHECKS[cid](text).passed, (cid, CHECKS[cid](text).reason)


def test_wrong_answers_fail():
    wrong = {"capital-france": ["Parisian food", "Lyon"], "capital-australia": ["Sydney", "Can"],
             "science-symbol-gold": ["au", "Aurum", "Ag"], "units-feet-per-mile": ["52800", "5,281", "528"],
             "format-json-age": ['{"age": "30"}', '{"age": 31}', "age: 30"],
             "instr-upper-hello": ["hello", "Hello"], "format-python-list": ["[2, 4, 6, 8]x", "[0, 2, 4]"]}
    for cid, texts in wrong.items():
        for text in texts:
            assert not CHECKS[cid](text).passed, (cid, text)
    # the demo's memorized wrong fact fails every capital question but China's
    for c in SPECS:
        if "capitals" in c.tags and c.id != "capital-china":
            assert not CHECKS[c.id]("The capital is Beijing.").passed, c.id


def test_another_fact_case_answer_fails_unless_it_is_the_same_answer():
    for c in SPECS:  # within its own kind (the first tag): "blue" is a color, "blue whale" an animal
        for other in SPECS:
            if (c.tags[0] in FACT_TAGS and other.tags[0] == c.tags[0]
                    and other.expected.casefold() != c.expected.casefold()):
                assert not CHECKS[c.id](other.expected).passed, (c.id, other.expected)


def test_numbers_are_not_matched_inside_longer_numbers():
    for c in SPECS:
        if c.expected.isdigit():
            n = int(c.expected)
            for text in (str(n + 1), str(n * 10 + 1), f"{n}.5", f"1{n}"):
                assert not CHECKS[c.id](text).passed, (c.id, text)
            assert CHECKS[c.id](f"The answer is {n}.").passed


def test_arithmetic_answers_are_the_arithmetic():
    ops = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "/": int.__floordiv__}
    for c in SPECS:
        m = re.fullmatch(r"What is (\d+) ([-+*/]) (\d+)\?", c.prompt)
        if m:
            a, op, b = int(m[1]), m[2], int(m[3])
            assert op != "/" or a % b == 0
            assert int(c.expected) == ops[op](a, b), c.id


def test_a_tag_no_case_has_is_a_clear_error():
    with pytest.raises(ValueError, match="no case of the pack has tag 'capital'"):
        pack_cases("capital")
    assert {c.id for c in pack_cases(["units"])} == {c.id for c in SPECS if "units" in c.tags}
