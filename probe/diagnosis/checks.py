"""What "answered right" means: small named checks that say why they passed or failed.

    >>> from probe import checks
    >>> checks.contains("Paris")("The capital is Paris.")
    CheckResult(passed=True, reason="contains 'Paris'", name="contains('Paris')")
    >>> checks.json_valid()("Sure! ```json\\n{\\"a\\": 1}\\n```").passed
    True

A check is any ``Check`` or any callable ``str -> bool``. Checks have a ``spec`` (plain data)
so case files can name them: ``{"answer": "Paris"}``, ``{"contains": "Paris"}``,
``{"regex": "^\\\\d+$"}``, ``{"equals": "4"}``, ``"json_valid"`` or
``{"json_valid": {"type": "object"}}``; next to an ``expected`` answer, ``"answer"`` (the
default) and ``"exact"`` (``contains(expected)``: case-sensitive, anywhere) name the two ways
of reading it.

    >>> checks.answer("cheetah")("The Cheetah is fastest.").passed   # an expected answer's default
    True
    >>> checks.answer("Can")("Canberra").passed                      # whole words only
    False
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    reason: str  # short, for a person: why it passed or failed
    name: str = ""


class Check:
    """A named test on a model's output text. Call it with the text."""

    def __init__(self, name: str, fn: Callable[[str], tuple[bool, str]], spec: Any = None):
        self.name, self._fn, self.spec = name, fn, spec

    def __call__(self, text: str) -> CheckResult:
        if not isinstance(text, str):
            raise TypeError(f"a check takes the output text (str), got {type(text).__name__}")
        passed, reason = self._fn(text)
        return CheckResult(bool(passed), reason, self.name)

    def __repr__(self) -> str:
        return f"Check({self.name})"


def _short(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[: n - 1] + "…")


def contains(needle: str, *, case: bool = True) -> Check:
    """The output contains ``needle`` (``case=False``: ignoring case)."""
    if not isinstance(needle, str) or not needle:
        raise ValueError("contains() needs a non-empty string")

    def run(text):
        hay, key = (text, needle) if case else (text.lower(), needle.lower())
        return (True, f"contains {_short(needle)}") if key in hay else (
            False, f"does not contain {_short(needle)}; got {_short(text)}")

    return Check(f"contains({needle!r})", run, {"contains": needle} if case else
                 {"contains": needle, "case": False})


# Scripts written without spaces between words (Chinese, Japanese, Thai, ...) and Korean (whose
# particles attach to the word): no word boundary is asked for next to their letters.
_UNSPACED = ("\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f"
             "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f")
_SPACED_WORD = f"[^\\W{_UNSPACED}]"  # a letter, digit or _ of a script that spaces its words


def normalize(text: str) -> str:
    """``text`` as :func:`answer` compares it: NFKC, case-folded (then NFKC again, as casefolding
    can leave text unnormalised), every run of whitespace one space. Full-width letters, ligatures
    and "ß" compare equal to their plain forms ("ﬁ" = "fi", "Straße" = "STRASSE")."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return re.sub(r"\s+", " ", folded)


def _word_pattern(key: str) -> re.Pattern:
    """``key`` (normalised) found where it is not part of a longer word or number."""
    body = re.escape(key)
    if re.match(_SPACED_WORD, key[0]):
        body = f"(?<!{_SPACED_WORD})" + (r"(?<!\d[.,])" if key[0].isdigit() else "") + body
    if re.match(_SPACED_WORD, key[-1]):
        body += f"(?!{_SPACED_WORD})" + (r"(?![.,]\d)" if key[-1].isdigit() else "")
    return re.compile(body)


def answer(expected: str) -> Check:
    """The output gives ``expected`` the way a person means "the answer is X": ignoring case and
    Unicode form (:func:`normalize`: NFKC + casefold, whitespace runs as one space), and as whole
    words: "cheetah" passes "The Cheetah is...", "Can" does not pass "Canberra", "391" does not
    pass "3910" or "391.5". Next to letters of scripts written without spaces (CJK, Thai, ...)
    no boundary is asked for. The default check of an ``expected`` answer; ``contains`` is the
    exact one (case-sensitive, anywhere)."""
    if not isinstance(expected, str) or not expected.strip():
        raise ValueError("answer() needs a non-empty string")
    key = normalize(expected).strip()
    pattern = _word_pattern(key)
    label = _short(expected)

    def run(text):
        hay = normalize(text)
        if pattern.search(hay):
            return True, f"gives {label} (case-insensitive, whole words)"
        if key in hay:
            return False, f"has {label} only inside a longer word or number; got {_short(text)}"
        return False, f"does not give {label}; got {_short(text)}"

    return Check(f"answer({expected!r})", run, {"answer": expected})


def equals(expected: str, *, strip: bool = True) -> Check:
    """The output equals ``expected`` (surrounding whitespace ignored unless ``strip=False``)."""

    def run(text):
        got = text.strip() if strip else text
        want = expected.strip() if strip else expected
        return (True, f"equals {_short(want)}") if got == want else (
            False, f"expected {_short(want)}, got {_short(got)}")

    return Check(f"equals({expected!r})", run, {"equals": expected})


def regex(pattern: str, flags: int = 0) -> Check:
    """``re.search(pattern, output)`` finds a match."""
    try:
        compiled = re.compile(pattern, flags)
    except re.error as err:
        raise ValueError(f"bad regex {pattern!r}: {err}") from None

    def run(text):
        m = compiled.search(text)
        return (True, f"matches /{pattern}/ at {_short(m.group(0))}") if m else (
            False, f"no match for /{pattern}/ in {_short(text)}")

    return Check(f"regex({pattern!r})", run, {"regex": pattern})


_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)


def find_json(text: str) -> tuple[Any, str] | None:
    """The first JSON value in ``text`` (inside a ``` fence if there is one) and its source."""
    decoder = json.JSONDecoder()
    blocks = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for block in blocks:
        for m in re.finditer(r"[\[{]", block):
            try:
                value, end = decoder.raw_decode(block, m.start())
            except json.JSONDecodeError:
                continue
            return value, block[m.start() : end]
    return None


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "number": (int, float), "integer": int}


def schema_errors(value: Any, schema: dict, where: str = "$") -> list[str]:
    """A small JSON-Schema subset: type, required, properties, items, enum."""
    errors = []
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("number", "integer") and isinstance(value, bool))
        if not ok:
            return [f"{where} should be {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} should be one of {schema['enum']!r}")
    if isinstance(value, dict):
        errors += [f"{where} lacks required key {k!r}" for k in schema.get("required", []) if k not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += schema_errors(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    return errors


def json_valid(schema: dict | None = None) -> Check:
    """The output holds a JSON object or array (fenced or not), matching ``schema`` if given."""
    if schema is not None:
        check_schema(schema)

    def run(text):
        found = find_json(text)
        if found is None:
            return False, f"no JSON object or array found in {_short(text)}"
        value, source = found
        if schema is not None:
            errors = schema_errors(value, schema)
            if errors:
                return False, "JSON does not match the schema: " + "; ".join(errors[:3])
        return True, f"valid JSON {_short(source)}"

    return Check("json_valid" if schema is None else "json_valid(schema)", run,
                 "json_valid" if schema is None else {"json_valid": schema})


def check_schema(schema, where: str = "schema") -> None:
    """Raise ValueError naming the first part of ``schema`` that is not what
    :func:`schema_errors` reads: an object with ``type`` (one of its names), ``required`` (a
    list of strings), ``properties`` (an object of schemas), ``items`` (a schema), ``enum``
    (a list)."""
    if not isinstance(schema, dict):
        raise ValueError(f"json_valid's {where} must be a JSON Schema object such as "
                         f"{{\"type\": \"object\"}}, got {type(schema).__name__} {schema!r:.60}")
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):
        raise ValueError(f"json_valid's {where}.type: unknown JSON schema type {kind!r:.60}; expected one of {sorted(_TYPES)}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
        raise ValueError(f"json_valid's {where}.required must be a list of strings, got {required!r:.60}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValueError(f"json_valid's {where}.enum must be a list, got {schema['enum']!r:.60}")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError(f"json_valid's {where}.properties must be an object of schemas "
                         f"(name -> schema), got {type(properties).__name__} {properties!r:.60}")
    for key, sub in properties.items():
        check_schema(sub, f"{where}.properties.{key}")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")


def from_callable(fn: Callable[[str], bool], name: str | None = None) -> Check:
    label = name or getattr(fn, "__name__", "check")

    def run(text):
        result = fn(text)
        if isinstance(result, CheckResult):
            return result.passed, result.reason
        return (True, f"{label} passed") if result else (False, f"{label} failed on {_short(text)}")

    return Check(label, run, None)


_FROM_SPEC = {"answer": answer, "contains": contains, "equals": equals, "regex": regex}
# Checks named by a word that read the case's expected answer: what "right" means for it.
_OF_EXPECTED = {"answer": answer, "exact": contains}


def default_check(expected: str) -> Check:
    """The check an ``expected`` answer gets when no check is named: :func:`answer`."""
    return answer(expected)


def as_check(obj, expected: str | None = None) -> Check:
    """A Check from a Check, ``json_valid`` itself, a callable ``str -> bool`` or a spec.

    ``"answer"`` and ``"exact"`` read ``expected``: :func:`answer` (the default) and
    ``contains(expected)`` (case-sensitive, anywhere: the default before answer).
    """
    if isinstance(obj, Check):
        return obj
    if obj is json_valid or obj == "json_valid":
        return json_valid()
    if isinstance(obj, str) and obj in _OF_EXPECTED:
        if not isinstance(expected, str) or not expected:
            raise ValueError(f"check {obj!r} reads the expected answer: give 'expected' too")
        return _OF_EXPECTED[obj](expected)
    if isinstance(obj, dict):
        if len(obj) == 1 and "json_valid" in obj:
            return json_valid(obj["json_valid"])
        kinds = [k for k in obj if k in _FROM_SPEC]
        if len(kinds) != 1:
            raise ValueError(f"a check spec needs exactly one of {sorted(_FROM_SPEC) + ['json_valid']}, got {obj!r}")
        kind = kinds[0]
        if not isinstance(obj[kind], str):
            raise ValueError(f"check {kind!r} needs a string, got {obj[kind]!r}")
        if kind == "contains" and obj.get("case") is False:
            return contains(obj[kind], case=False)
        return _FROM_SPEC[kind](obj[kind])
    if callable(obj):
        return from_callable(obj)
    raise TypeError(f"not a check: {obj!r} (use probe.checks.answer/contains/equals/regex/json_valid, "
                    f"'answer' or 'exact' with an expected answer, or a callable)")
