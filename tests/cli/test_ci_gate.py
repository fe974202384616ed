"""``probe diagnose --fail-on ... --junit FILE``: the CI gate, and JUnit XML in the shape pytest's
own ``--junitxml`` writes (pytest run here as the reference)."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from probe import cli
from probe.core.junit import junit_xml, write_junit

EVIL = 'x<script>&"\x01'  # markup and a character XML 1.0 cannot hold


def _cases(path, lines):
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


CASES = [
    {"id": "always-right", "prompt": "Hello", "check": {"regex": "^"}},  # matches any text: ok
    {"id": "never-right", "prompt": "Hello", "expected": "zqzqzq " + EVIL},  # no model writes it: never_had
]


def _run(tiny_dirs, tmp_path, *extra):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", CASES)
    return cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--max-new-tokens", "2", "--quiet", *extra])


def test_fail_on_exits_3_naming_the_case_and_junit_fails_only_it(tiny_dirs, tmp_path, capsys):
    junit = tmp_path / "out" / "probe.xml"
    code = _run(tiny_dirs, tmp_path, "--fail-on", "lost,never_had", "--junit", str(junit))
    err = capsys.readouterr().err
    assert code == 3 and "1 case(s) failed --fail-on lost,never_had" in err and "never-right: never_had" in err
    root = ET.parse(junit).getroot()  # it parses: every character escaped or made XML-safe
    suite = root.find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1" and root.get("failures") == "1"
    by_name = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert set(by_name) == {"always-right", "never-right"}
    assert by_name["always-right"].find("failure") is None
    failure = by_name["never-right"].find("failure")
    assert failure.get("message").startswith("never_had: base fail, tuned fail (greedy); tuned: does not give")
    assert "zqzqzq x<script>&\"\\x01" in failure.text  # the text back, what XML cannot hold as escapes
    assert all(tc.get("classname") == "probe.diagnose.cases" for tc in by_name.values())


def test_no_gate_no_failure_and_a_gate_that_nothing_meets_passes(tiny_dirs, tmp_path, capsys):
    assert _run(tiny_dirs, tmp_path) == 0
    junit = tmp_path / "j.xml"
    assert _run(tiny_dirs, tmp_path, "--fail-on", "lost", "--junit", str(junit)) == 0
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_an_unknown_fail_on_word_is_an_input_error_before_any_model_loads(tmp_path, capsys):
    cases = _cases(tmp_path / "cases.jsonl", CASES)
    code = cli.main(["diagnose", "--base", str(tmp_path / "nope"), "--tuned", str(tmp_path / "nope"),
                     "--cases", str(cases), "--book", str(tmp_path / "b"), "--fail-on", "lost,broken"])
    err = capsys.readouterr().err
    assert code == 1 and "--fail-on: unknown verdict or label 'broken'" in err and "never_had" in err


def test_a_case_that_could_not_run_fails_its_junit_testcase(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", [CASES[0], {"id": "bad", "prompt": "x", "check": {"nope": 1}}])
    junit = tmp_path / "j.xml"
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--max-new-tokens", "2", "--quiet", "--junit", str(junit)])
    assert code == 1
    (bad,) = [tc for tc in ET.parse(junit).getroot().iter("testcase") if tc.get("name") == "bad"]
    assert bad.find("failure").get("message").startswith("error: ")


def test_junit_has_the_shape_pytest_writes(tmp_path):
    """pytest's --junitxml (what CI reporters are built for) on one passing and one failing
    test, against write_junit of the same: the same elements and attributes."""
    (tmp_path / "test_x.py").write_text("def test_ok():\n    pass\n\ndef test_bad():\n    assert False, 'why'\n")
    ref = tmp_path / "pytest.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_x.py"),
                    f"--junitxml={ref}"], cwd=tmp_path, capture_output=True, check=False)
    ours = tmp_path / "ours.xml"
    write_junit(ours, "suite", [("test_ok", "test_x", None), ("test_bad", "test_x", "AssertionError: why")])

    def shape(path):
        root = ET.parse(path).getroot()
        suite = root.find("testsuite")
        cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
        return (root.tag, suite.tag, set(suite.attrib) & {"name", "tests", "failures", "errors", "skipped"},
                suite.get("tests"), suite.get("failures"), suite.get("errors"),
                {n: (set(tc.attrib) & {"classname", "name", "time"}, [c.tag for c in tc]) for n, tc in cases.items()},
                set(cases["test_bad"].find("failure").attrib) & {"message"})

    assert shape(ours) == shape(ref)


@pytest.mark.parametrize("text", [EVIL, "\ud800 a lone surrogate", "]]>", "line one\nline two", "\t\r", "\uffff\ufffe"])
def test_junit_xml_holds_any_text(text):
    root = ET.fromstring(junit_xml(text, [(text, text, text)]).encode("utf-8"))
    tc = root.find("testsuite/testcase")
    assert tc.find("failure").get("message") == _xml_safe_first_line(text)


def _xml_safe_first_line(text):
    from probe.core.junit import xml_safe

    return xml_safe(text).split("\n", 1)[0]


def test_shift_fail_on_lost_gates_each_tag_of_the_regression_table(tiny_dirs, tmp_path, capsys):
    import probe
    from builders import make_adapter

    base_dir = tiny_dirs[("llama", "unigram", True)]
    adapter = make_adapter(base_dir, tmp_path / "adapter")
    base, tuned = probe.load_pair(base_dir, adapter=adapter)
    answers = {p: [probe.generate(lm, p, max_new_tokens=3).text for lm in (base, tuned)]
               for p in ("The capital of France is", "Once upon a time", "x y z", "def add(a, b):")}
    prompt, (base_text, _) = next((p, a) for p, a in answers.items() if a[0] != a[1])  # the models differ
    cases = _cases(tmp_path / "c.jsonl", [
        {"id": "lost-one", "prompt": prompt, "check": {"equals": base_text}, "tags": ["geo"]},  # base only
        {"id": "kept-one", "prompt": "x", "check": {"regex": "^"}, "tags": ["misc"]}])
    argv = ["shift", "--base", str(base_dir), "--adapter", str(adapter), "--prompts", str(cases),
            "--out", str(tmp_path / "s.json"), "--max-new-tokens", "3", "--junit", str(tmp_path / "j.xml")]
    assert cli.main(argv + ["--fail-on-lost", "0"]) == 3
    err = capsys.readouterr().err
    assert "2 tag(s) lost more than 0 case(s)" in err and "tag geo: 1 of 1 cases lost" in err and "lost-one" in err
    by_tag = {tc.get("name"): tc for tc in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")}
    assert set(by_tag) == {"geo", "misc", "all"}
    assert by_tag["misc"].find("failure") is None and by_tag["all"].find("failure") is not None
    assert cli.main(argv + ["--fail-on-lost", "1"]) == 0
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "0"
    plain = tmp_path / "p.txt"
    plain.write_text("Hello\n", encoding="utf-8")
    code = cli.main(["shift", "--base", str(base_dir), "--adapter", str(adapter), "--prompts", str(plain),
                     "--fail-on-lost", "0"])
    assert code == 1 and "gate the regression table" in capsys.readouterr().err
