"""Build the basics pack (probe/packs/basics.jsonl) from its fact tables.

    python -m probe.packs.make_basics          # rewrites probe/packs/basics.jsonl

Every case has an explicit check, so what "right" means never depends on a default:

* a fact: a regex matching any accepted answer as a whole word, ignoring case
  (``(?i)(?<!\\w)(?:Paris)(?!\\w)``: "paris." passes, "Parisian" does not);
* a number: the digits not inside a longer number (``(?<![\\d.,])391(?![\\d]|[.,]\\d)``:
  "391." passes, "3910" and "391.5" do not), or the number spelled out;
* a chemical symbol: the symbol with its case ("Au", not "au");
* an instruction or a format: a regex on the shape asked for, or ``json_valid`` with a schema.

tests/packs/test_basics_pack.py checks that the file is what this script writes, that each case's
expected answer passes its own check, that a wrong answer and the prompt itself (an echo) fail it.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

from . import basics_facts as F

PACK = Path(__file__).parent / "basics.jsonl"
SEED = 31


def words(*accepted: str) -> dict:
    """Any of ``accepted`` as a whole word (or phrase), ignoring case."""
    alts = "|".join(re.escape(a) for a in sorted(set(accepted), key=lambda a: (-len(a), a)))
    return {"regex": f"(?i)(?<!\\w)(?:{alts})(?!\\w)"}


def number(n: int, word: str | None = None, *, commas: bool = True) -> dict:
    """The number ``n`` (with or without thousands commas; or ``word``), not part of a longer number."""
    forms = [str(n)] + ([f"{n:,}"] if n >= 1000 and commas else [])
    alts = "|".join(re.escape(f) for f in forms)
    digits = f"(?<![\\d.,])(?:{alts})(?![\\d]|[.,]\\d)"
    return {"regex": f"(?i){digits}|(?<!\\w){word}(?!\\w)" if word else digits}


def symbol(s: str) -> dict:
    return {"regex": f"(?<![A-Za-z]){s}(?![a-z])"}


def _case(cid, prompt, expected, check, tags):
    return {"id": cid, "prompt": prompt, "expected": expected, "check": check, "tags": list(tags)}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _arithmetic(rng: random.Random) -> list[dict]:
    out = []
    ops = [("+", lambda a, b: a + b, 15), ("-", lambda a, b: a - b, 15), ("*", lambda a, b: a * b, 15),
           ("/", lambda a, b: a // b, 10)]
    seen = set()
    for sym, fn, n in ops:
        k = 0
        while k < n:
            if sym == "+":
                a, b = rng.randint(11, 89), rng.randint(11, 89)
            elif sym == "-":
                a, b = rng.randint(30, 99), rng.randint(11, 29)
            elif sym == "*":
                a, b = rng.randint(2, 12), rng.randint(2, 12)
            else:
                b, q = rng.randint(2, 12), rng.randint(2, 12)
                a = b * q
            ans = fn(a, b)
            # the answer must not be written in the question (an echo would pass)
            if (a, sym, b) in seen or str(ans) in (str(a), str(b)) or str(ans) in f"{a} {b}":
                continue
            seen.add((a, sym, b))
            name = {"+": "add", "-": "sub", "*": "mul", "/": "div"}[sym]
            out.append(_case(f"arith-{name}-{a}-{b}", f"What is {a} {sym} {b}?", str(ans), number(ans),
                             ("arithmetic",)))
            k += 1
    for n in (7, 9, 11, 12, 15):
        out.append(_case(f"arith-square-{n}", f"What is {n} squared?", str(n * n), number(n * n),
                         ("arithmetic",)))
    for n in (49, 64, 81, 100, 144):
        r = int(n ** 0.5)
        assert r * r == n
        out.append(_case(f"arith-sqrt-{n}", f"What is the square root of {n}?", str(r), number(r),
                         ("arithmetic",)))
    return out


def _instructions() -> list[dict]:
    t = ("instructions",)
    rows = [
        ("repeat-banana", "Repeat the word 'banana' and nothing else.", "banana", r"(?i)^\W*banana\W*$"),
        ("reply-ok", "Reply with only the word OK.", "OK", r"(?i)^\W*ok\W*$"),
        ("yes-sun-star", "Answer with yes or no only: is the Sun a star?", "Yes", r"(?i)^\W*yes\b"),
        ("no-fire-cold", "Answer with yes or no only: is fire cold?", "No", r"(?i)^\W*no\b"),
        ("yes-seven-prime", "Answer with yes or no only: is 7 a prime number?", "Yes", r"(?i)^\W*yes\b"),
        ("no-ten-odd", "Answer with yes or no only: is 10 an odd number?", "No", r"(?i)^\W*no\b"),
        ("upper-hello", "Write the word 'hello' in capital letters.", "HELLO", r"(?<![A-Za-z])HELLO(?![A-Za-z])"),
        ("lower-world", "Write the word 'WORLD' in lowercase letters.", "world", r"(?<![A-Za-z])world(?![A-Za-z])"),
        ("backwards-cat", "Spell the word 'cat' backwards.", "tac", r"(?i)(?<![a-z])t-?a-?c(?![a-z])"),
        ("backwards-dog", "Spell the word 'dog' backwards.", "god", r"(?i)(?<![a-z])g-?o-?d(?![a-z])"),
        ("count-up", "Count from 1 to 5, separated by commas.", "1, 2, 3, 4, 5", r"1,\s*2,\s*3,\s*4,\s*5(?!\d)"),
        ("count-down", "Count down from 5 to 1, separated by commas.", "5, 4, 3, 2, 1", r"5,\s*4,\s*3,\s*2,\s*1(?!\d)"),
        ("fox-dog", "Complete the sentence: The quick brown fox jumps over the lazy ...", "dog", r"(?i)(?<!\w)dog(?!\w)"),
        ("twinkle-star", "Complete the line: Twinkle, twinkle, little ...", "star", r"(?i)(?<!\w)star(?!\w)"),
        ("next-even", "What is the next number in the sequence 2, 4, 6, 8?", "10", r"(?<![\d.,])10(?![\d]|[.,]\d)"),
        ("next-odd", "What is the next number in the sequence 1, 3, 5, 7?", "9", r"(?<![\d.,])9(?![\d]|[.,]\d)"),
        ("next-letter", "What letter comes next: A, B, C, D?", "E", r"(?<![A-Za-z])E(?![A-Za-z])"),
        ("sort-three", "Sort these numbers from smallest to largest: 9, 2, 5.", "2, 5, 9", r"2\D+5\D+9"),
        ("larger-number", "Which number is larger, 12 or 7? Answer with the number only.", "12", r"^\D*12\D*$"),
        ("one-word-stop", "In one word: what color is a stop sign?", "Red", r"(?i)(?<!\w)red(?!\w)"),
        ("quote-hello", "Put the word hello in double quotes.", "\"hello\"", r"\"hello\""),
        ("backticks-code", "Wrap the word code in backticks.", "`code`", r"`code`"),
    ]
    return [_case(f"instr-{cid}", p, e, {"regex": rx}, t) for cid, p, e, rx in rows]


def _formats() -> list[dict]:
    js = lambda schema: {"json_valid": schema}  # noqa: E731
    obj = lambda props, **kw: {"type": "object", "required": list(props), "properties": props, **kw}  # noqa: E731
    rows = [
        ("json-name", "Return a JSON object whose key \"name\" has the value \"Alice\". Output only the JSON.",
         '{"name": "Alice"}', js(obj({"name": {"enum": ["Alice"]}}))),
        ("json-age", "Return a JSON object whose key \"age\" has the number 30. Output only the JSON.",
         '{"age": 30}', js(obj({"age": {"type": "integer", "enum": [30]}}))),
        ("json-city", "Give a JSON object with the keys \"city\" and \"country\" for Paris, France.",
         '{"city": "Paris", "country": "France"}', js(obj({"city": {"enum": ["Paris"]}, "country": {"enum": ["France"]}}))),
        ("json-person", "Convert to a JSON object with keys \"name\" and \"age\": Bob is 25 years old.",
         '{"name": "Bob", "age": 25}', js(obj({"name": {"enum": ["Bob"]}, "age": {"type": "integer", "enum": [25]}}))),
        ("json-bool", "Return a JSON object whose key \"done\" is the boolean true.",
         '{"done": true}', js(obj({"done": {"type": "boolean", "enum": [True]}}))),
        ("json-list-key", "Return a JSON object whose key \"colors\" holds the list red, green, blue.",
         '{"colors": ["red", "green", "blue"]}',
         js(obj({"colors": {"type": "array", "items": {"enum": ["red", "green", "blue"]}}}))),
        ("json-nested", "Return a JSON object with a key \"user\" holding an object whose \"id\" is 1.",
         '{"user": {"id": 1}}', js(obj({"user": obj({"id": {"type": "integer", "enum": [1]}})}))),
        ("json-array-numbers", "Return a JSON array of the numbers 1, 2 and 3.", "[1, 2, 3]",
         js({"type": "array", "items": {"type": "integer", "enum": [1, 2, 3]}})),
        ("json-array-fruits", "Return a JSON array of three fruit names as strings.",
         '["apple", "banana", "cherry"]', js({"type": "array", "items": {"type": "string"}})),
        ("json-weekend", "Return a JSON array of the two days of the weekend.",
         '["Saturday", "Sunday"]', js({"type": "array", "items": {"enum": ["Saturday", "Sunday"]}})),
    ]
    out = [_case(f"format-{cid}", p, e, c, ("format", "json")) for cid, p, e, c in rows]
    lists = [
        ("bullets-fruits", "List three fruits as a bulleted list, one per line, each starting with '- '.",
         "- Apple\n- Banana\n- Cherry", r"(?m)^[ \t]*- \S.*\n+[ \t]*- \S.*\n+[ \t]*- \S"),
        ("numbered-months", "List the first three months of the year as a numbered list.",
         "1. January\n2. February\n3. March", r"(?is)1[.)]\s*January.*2[.)]\s*February.*3[.)]\s*March"),
        ("comma-colors", "Name the three primary colors of light, separated by commas.", "Red, green, blue",
         r"(?is)^(?=.*\bred\b)(?=.*\bgreen\b)(?=.*\bblue\b).*,.*,"),
        ("comma-digits", "Write the digits one to three as a comma-separated list.", "1, 2, 3",
         r"1,\s*2,\s*3(?!\d)"),
        ("python-list", "Write a Python list of the first three positive even numbers.", "[2, 4, 6]",
         r"\[\s*2\s*,\s*4\s*,\s*6\s*\]"),
        ("markdown-heading", "Write a Markdown heading that says Introduction.", "# Introduction",
         r"(?m)^[ \t]*#{1,6}[ \t]+Introduction"),
        ("numbered-steps", "Give two steps to make tea as a numbered list.", "1. Boil water.\n2. Steep the tea.",
         r"(?m)^[ \t]*1[.)][ \t]+\S.*\n+[ \t]*2[.)][ \t]+\S"),
    ]
    out += [_case(f"format-{cid}", p, e, {"regex": rx}, ("format", "lists")) for cid, p, e, rx in lists]
    return out


def build() -> list[dict]:
    rng = random.Random(SEED)
    cases = []
    for country, answers in F.CAPITALS.items():
        cases.append(_case(f"capital-{_slug(country.removeprefix('the '))}",
                           f"What is the capital of {country}?", answers[0], words(*answers),
                           ("capitals", "geography")))
    for city, answers in F.CITIES.items():
        cases.append(_case(f"city-{_slug(city)}", f"In which country is the city of {city}?", answers[0],
                           words(*answers), ("geography",)))
    for prompt, *answers in F.LANDMARKS:
        cases.append(_case(f"geo-{_slug(prompt)[:40]}", prompt, answers[0], words(*answers), ("geography",)))
    groups = [("science", F.SCIENCE), ("animals", F.ANIMALS), ("people", F.PEOPLE), ("currency", F.CURRENCIES),
              ("language", F.LANGUAGES), ("words", F.WORDS), ("translation", F.TRANSLATIONS),
              ("calendar", F.CALENDAR), ("colors", F.COLORS)]
    for tag, rows in groups:
        for prompt, *answers in rows:
            cases.append(_case(f"{tag}-{_slug(prompt)[:48]}", prompt, answers[0], words(*answers),
                               (tag, "facts")))
    for element, sym in F.SYMBOLS.items():
        cases.append(_case(f"science-symbol-{element}", f"What is the chemical symbol for {element}?", sym,
                           symbol(sym), ("science", "facts")))
    for prompt, year in F.YEARS:
        cases.append(_case(f"history-{_slug(prompt)[:48]}", prompt, year, number(int(year), commas=False), ("history", "facts")))
    for prompt, n, word in F.COUNTS:
        cases.append(_case(f"count-{_slug(prompt)[:48]}", prompt, str(n), number(n, word), ("numbers", "facts")))
    for small, large, n in F.UNITS:
        cases.append(_case(f"units-{_slug(small)}-per-{_slug(large)}", f"How many {small} are in one {large}?",
                           str(n), number(n), ("units",)))
    for k, small, large, n in F.CONVERSIONS:
        cases.append(_case(f"units-{k}-{_slug(large)}-in-{_slug(small)}", f"How many {small} are in {k} {large}?",
                           str(k * n), number(k * n), ("units",)))
    cases += _arithmetic(rng) + _instructions() + _formats()
    ids = [c["id"] for c in cases]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate case ids: {dup}"
    return cases


def lines(cases: list[dict]) -> str:
    return "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)


def main(argv: list[str] | None = None) -> int:
    PACK.write_text(lines(build()), encoding="utf-8")
    print(f"{PACK} ({len(build())} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
