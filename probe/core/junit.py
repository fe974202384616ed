"""JUnit XML for CI systems: one testcase per probe case, a failure where a gate fails it.

    >>> write_junit("probe.xml", "probe diagnose: cases.jsonl",
    ...             [("japan-beijing", "probe.diagnose", "lost: base 10/10, tuned 0/10"),
    ...              ("china-ok", "probe.diagnose", None)])

The shape is the one pytest's ``--junitxml`` writes (``<testsuites><testsuite name tests failures
errors skipped time><testcase classname name time><failure message>``), which GitHub Actions
reporters, GitLab and Jenkins read. Every piece of text is XML-escaped, and characters XML 1.0
cannot hold at all (control characters, lone surrogates: model output has them) are written as
``\\xNN`` / ``\\uNNNN`` escapes, so the file always parses. Written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape, quoteattr

from .files import write_atomically

# What XML 1.0 forbids in a document: C0 controls but tab, newline and carriage return; the
# surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text) -> str:
    """``text`` with every character XML 1.0 cannot hold written as its Python escape."""
    return _NOT_XML.sub(lambda m: m.group(0).encode("unicode_escape", "backslashreplace").decode("ascii"),
                        str(text))


def junit_xml(suite_name: str, cases: Iterable[tuple[str, str, str | None]]) -> str:
    """The JUnit XML text of one suite: ``cases`` are ``(name, classname, failure_message or None)``."""
    rows = list(cases)
    failures = sum(message is not None for _, _, message in rows)
    body = []
    for name, classname, message in rows:
        head = f'    <testcase classname={quoteattr(xml_safe(classname))} name={quoteattr(xml_safe(name))} time="0"'
        if message is None:
            body.append(head + " />")
            continue
        safe = xml_safe(message)
        first = safe.split("\n", 1)[0]
        body.append(f"{head}>\n      <failure message={quoteattr(first)}>{escape(safe)}</failure>\n"
                    "    </testcase>")
    suite = quoteattr(xml_safe(suite_name))
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuites name={suite} tests="{len(rows)}" failures="{failures}" errors="0" skipped="0" time="0">\n'
            f'  <testsuite name={suite} tests="{len(rows)}" failures="{failures}" errors="0" skipped="0" time="0">\n'
            + "".join(line + "\n" for line in body)
            + "  </testsuite>\n</testsuites>\n")


def write_junit(path, suite_name: str, cases: Iterable[tuple[str, str, str | None]]) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically; returns the path.

    Args:
        path: the file to write (its folder is made if missing).
        suite_name: the test suite's name, e.g. ``"probe diagnose: cases.jsonl"``.
        cases: ``(name, classname, failure_message_or_None)`` per testcase, in order; a
            message's first line is the failure's ``message`` attribute, the whole its text.
    """
    return write_atomically(path, junit_xml(suite_name, cases))
