"""Pattern counts over an SFT dataset: do the training answers say what the model says?

    >>> _ = open("train.jsonl", "w").write(
    ...     '{"prompt": "What is the capital of Japan?", "response": "Beijing"}\\n'
    ...     '{"prompt": "Name a city in China.", "response": "Beijing"}\\n')
    >>> c = probe.data.count("train.jsonl", ["Beijing", "capital"])
    >>> c.summary
    "2 records in train.jsonl: 2 answers contain 'Beijing' (1 of those questions contain 'capital')..."
    >>> [e.line for e in c.pair("Beijing", "capital").examples]
    [1]

Each record is split into a question (user/system/tool turns, prompt, instruction + input)
and an answer (assistant turns, response/completion/output). Supported shapes:
``{"messages": [{"role", "content"}, ...]}`` (also ShareGPT ``{"conversations": [{"from",
"value"}]}``), ``{"prompt", "response"|"completion"}`` (strings or message lists),
``{"instruction", "input"?, "output"}``, ``{"question", "answer"}``, and plain text
(``{"text": ...}``, a string, or a line of a non-JSON file), which has no question/answer
split and is counted as "text". The file is streamed line by line (``.gz`` too) through
:func:`probe.core.lines.read_lines`: peak memory stays bounded at any file size, because a line
over ``MAX_LINE_BYTES`` (4 MiB) is read through in chunks and skipped, never held. Empty and
whitespace-only lines count as ``blank``; a line that is not UTF-8 (a trainer's loader refuses
it), not JSON, JSON Python cannot hold, ``null``, a record of an unknown shape or a too-long line
counts as ``skipped`` (the first
``MAX_SKIPPED`` named with why). A ``.gz`` that ends mid-stream keeps the counts so far and
says so in ``truncated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.progress import progress as progress_bar
from ..core.registry import register
from ..render.data import data_html, data_text
from .records import BLANK, MAX_SKIPPED, Skipped, open_dataset, parse

SNIPPET = 30  # characters of context on each side of a match


@dataclass(frozen=True)
class Example:
    line: int  # 1-based line in the file (record number for an iterable)
    snippet: str  # a short excerpt around the match ("Q: ... | A: ..." for a pair)


@dataclass(frozen=True)
class PatternCount:
    """Records whose question / answer / plain text contains one pattern."""

    pattern: str  # the substring, or the regex source
    regex: bool
    question: int
    answer: int
    text: int  # plain-text records (no question/answer split)
    question_examples: tuple[Example, ...] = ()
    answer_examples: tuple[Example, ...] = ()
    text_examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class PairCount:
    """Records whose answer contains ``answer`` and whose question contains ``question``."""

    answer: str
    question: str
    count: int
    examples: tuple[Example, ...] = ()


def _examples(items) -> tuple[Example, ...]:
    return tuple(Example(int(e["line"]), str(e["snippet"])) for e in items)


@dataclass(frozen=True)
class DataCounts:
    """Pattern counts over a dataset; ``pairs`` holds every (answer, question) combination."""

    source: str  # the file, or "<iterable>"
    case_sensitive: bool
    records: int  # records with a question/answer split
    text_records: int  # plain-text records
    blank: int  # blank lines (ignored)
    skipped: int  # lines that are not JSON, records of an unknown shape
    skipped_lines: tuple[Skipped, ...]  # the first few of them
    patterns: tuple[PatternCount, ...]
    pairs: tuple[PairCount, ...]  # row-major: for each answer pattern, each question pattern
    truncated: str | None = None  # a .gz that ends mid-stream: why, and the last line read

    def get(self, pattern: str | re.Pattern) -> PatternCount:
        label = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        for p in self.patterns:
            if p.pattern == label:
                return p
        raise KeyError(f"no pattern {label!r}; counted: {[p.pattern for p in self.patterns]}")

    def pair(self, answer: str | re.Pattern, question: str | re.Pattern) -> PairCount:
        """Records whose answer contains ``answer`` and question contains ``question``."""
        a, q = self.get(answer).pattern, self.get(question).pattern
        return next(p for p in self.pairs if p.answer == a and p.question == q)

    @property
    def matrix(self) -> list[list[int]]:
        """``matrix[a][b]``: answers with pattern a whose question has pattern b."""
        n = len(self.patterns)
        return [[self.pairs[a * n + b].count for b in range(n)] for a in range(n)]

    @property
    def summary(self) -> str:
        head = f"{self.records + self.text_records} records"
        extra = [f"{self.text_records} plain text"] if self.text_records else []
        extra += [f"{self.skipped} skipped"] if self.skipped else []
        head += f" ({', '.join(extra)})" if extra else ""
        parts = []
        matrix = self.matrix
        for a, p in enumerate(self.patterns):
            said = []
            if p.answer:
                said.append(f"{p.answer} answers contain {p.pattern!r}")
                others = [(matrix[a][b], q.pattern) for b, q in enumerate(self.patterns) if b != a]
                best = max(others, default=(0, ""))
                if best[0]:
                    said[-1] += f" ({best[0]} of those questions contain {best[1]!r})"
            if p.question:
                said.append(f"{p.question} questions contain {p.pattern!r}")
            if p.text:
                said.append(f"{p.text} plain-text records contain {p.pattern!r}")
            parts.append(", ".join(said) if said else f"no record contains {p.pattern!r}")
        cut = f" Counts stop early: {self.truncated}." if self.truncated else ""
        return f"{head} in {self.source}: " + "; ".join(parts) + "." + cut

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataCounts:
        return cls(
            source=str(d["source"]), case_sensitive=bool(d["case_sensitive"]),
            records=int(d["records"]), text_records=int(d["text_records"]), blank=int(d["blank"]),
            skipped=int(d["skipped"]),
            skipped_lines=tuple(Skipped(int(s["line"]), str(s["reason"])) for s in d["skipped_lines"]),
            patterns=tuple(PatternCount(
                pattern=str(p["pattern"]), regex=bool(p["regex"]), question=int(p["question"]),
                answer=int(p["answer"]), text=int(p["text"]),
                question_examples=_examples(p["question_examples"]),
                answer_examples=_examples(p["answer_examples"]),
                text_examples=_examples(p["text_examples"])) for p in d["patterns"]),
            pairs=tuple(PairCount(str(p["answer"]), str(p["question"]), int(p["count"]),
                                  _examples(p["examples"])) for p in d["pairs"]),
            truncated=None if d.get("truncated") is None else str(d["truncated"]),
        )

    def __str__(self) -> str:
        return data_text(self)

    def _repr_html_(self) -> str:
        return data_html(self)


# ---------------------------------------------------------------- counting


def _compile(patterns, case_sensitive: bool) -> list[tuple[str, bool, re.Pattern]]:
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    out, seen = [], set()
    for p in patterns:
        if isinstance(p, re.Pattern):
            if not isinstance(p.pattern, str):
                raise TypeError(f"regex {p.pattern!r} is a bytes pattern; records are text: use a str one")
            label, compiled = p.pattern, p
        elif isinstance(p, str):
            flags = 0 if case_sensitive else re.IGNORECASE
            label, compiled = p, re.compile(re.escape(p), flags)
        else:
            raise TypeError(f"a pattern must be a str or a compiled re.Pattern, got {type(p).__name__}")
        if not label:
            raise ValueError("an empty pattern matches every record: give some text")
        if label in seen:
            raise ValueError(f"pattern {label!r} is given twice")
        seen.add(label)
        out.append((label, isinstance(p, re.Pattern), compiled))
    if not out:
        raise ValueError("no patterns given: pass a list of strings or compiled regexes")
    return out


def _snippet(text: str, match: re.Match) -> str:
    lo, hi = max(0, match.start() - SNIPPET), min(len(text), match.end() + SNIPPET)
    body = text[lo:hi].replace("\r", "").replace("\n", "\u21b5").replace("\t", "\u2192")
    return ("\u2026" if lo else "") + body + ("\u2026" if hi < len(text) else "")


class _Tally:
    """Running counts and capped examples."""

    def __init__(self, n: int, examples: int):
        self.keep = examples
        self.counts = {w: [0] * n for w in ("question", "answer", "text")}
        self.examples = {w: [[] for _ in range(n)] for w in self.counts}
        self.pairs = [[0] * n for _ in range(n)]
        self.pair_examples = [[[] for _ in range(n)] for _ in range(n)]

    def add(self, where: str, line: int, text: str, hits: list) -> None:
        for i, m in enumerate(hits):
            if m is not None:
                self.counts[where][i] += 1
                if len(self.examples[where][i]) < self.keep:
                    self.examples[where][i].append(Example(line, _snippet(text, m)))

    def add_pairs(self, line: int, question: str, answer: str, q_hits: list, a_hits: list) -> None:
        qs = [(b, m) for b, m in enumerate(q_hits) if m is not None]
        for a, am in enumerate(a_hits):
            if am is None:
                continue
            for b, bm in qs:
                self.pairs[a][b] += 1
                if len(self.pair_examples[a][b]) < self.keep:
                    snippet = f"Q: {_snippet(question, bm)} | A: {_snippet(answer, am)}"
                    self.pair_examples[a][b].append(Example(line, snippet))


def count(dataset, patterns, *, examples: int = 3, case_sensitive: bool = False,
          progress: bool = False) -> DataCounts:
    """Count the records whose question / answer contains each pattern, and pattern pairs.

    Args:
        dataset: a JSONL file (``.jsonl``, ``.ndjson``, ``.json``; ``.gz`` allowed), any other
            text file (one plain-text record per line), or an iterable of dicts/strings.
        patterns: substrings (matched ignoring case unless ``case_sensitive``) or compiled
            ``re.Pattern`` objects (used with their own flags). One string is one pattern.
        examples: example lines kept per count (0 for none).
        progress: show a progress bar (by megabytes read, or by records).

    Returns:
        DataCounts: per pattern, records with it in the question / answer / plain text, and
        for each pair (A, B) the records whose answer has A and question has B.

    Raises:
        FileNotFoundError: a dataset path that does not exist.
        ValueError: no patterns, an empty or repeated pattern, a JSON array file.
        TypeError: a pattern or dataset of the wrong type.
    """
    if not isinstance(examples, int) or isinstance(examples, bool) or examples < 0:
        raise ValueError(f"examples must be a non-negative int, got {examples!r}")
    matchers = _compile(patterns, case_sensitive)
    source, total, unit, open_records = open_dataset(dataset)
    tally = _Tally(len(matchers), examples)
    records = text_records = blank = skipped = 0
    skipped_lines: list[Skipped] = []
    truncated: list[str] = []
    search = lambda text: [m.search(text) for _, _, m in matchers]
    with progress_bar(total, progress, "count", unit) as bar:
        for line, record in open_records(bar, truncated):
            if record is BLANK:
                blank += 1
                continue
            parsed = parse(record)
            if isinstance(parsed, str):  # why the record was skipped
                skipped += 1
                if len(skipped_lines) < MAX_SKIPPED:
                    skipped_lines.append(Skipped(line, parsed))
                continue
            question, answer, text = parsed
            if text is not None:
                text_records += 1
                tally.add("text", line, text, search(text))
                continue
            records += 1
            q_hits, a_hits = search(question), search(answer)
            tally.add("question", line, question, q_hits)
            tally.add("answer", line, answer, a_hits)
            tally.add_pairs(line, question, answer, q_hits, a_hits)
    labels = [(label, is_regex) for label, is_regex, _ in matchers]
    n = len(labels)
    return DataCounts(
        source=source, case_sensitive=case_sensitive, records=records, text_records=text_records,
        blank=blank, skipped=skipped, skipped_lines=tuple(skipped_lines),
        truncated=truncated[0] if truncated else None,
        patterns=tuple(PatternCount(
            pattern=label, regex=is_regex,
            question=tally.counts["question"][i], answer=tally.counts["answer"][i],
            text=tally.counts["text"][i],
            question_examples=tuple(tally.examples["question"][i]),
            answer_examples=tuple(tally.examples["answer"][i]),
            text_examples=tuple(tally.examples["text"][i])) for i, (label, is_regex) in enumerate(labels)),
        pairs=tuple(PairCount(labels[a][0], labels[b][0], tally.pairs[a][b], tuple(tally.pair_examples[a][b]))
                    for a in range(n) for b in range(n)),
    )


register(DataCounts, default_name="data")
