"""A training example as a case to diagnose: the prompt before the scored answer, and that answer.

    >>> _ = open("train.jsonl", "w").write('{"messages": [{"role": "user", "content": "Hi"}, '
    ...                                     '{"role": "assistant", "content": "Hello."}]}\\n')
    >>> case = probe.example_case("train.jsonl", line=1)
    >>> case.prompt, case.expected
    ('Hi', 'Hello.')
    >>> d = probe.diagnose(base, tuned, case.prompt, expected=case.expected, max_new_tokens=4)

The record is read again from the dataset (the same stream ``probe.data_loss`` reads, so line
numbers agree) and split as the trainer sees it (:func:`probe.train.masks.parse`):

* messages: the prompt is every message before the last assistant turn (one user message
  becomes its text), the expected answer that turn's content;
* prompt/completion: the prompt as given, the completion as the expected answer (message
  lists: the completion's assistant content);
* plain text has no prompt/answer split: a ValueError says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.progress import progress as progress_bar
from ..data.records import BLANK, BadRecord, open_dataset
from .masks import is_answer, parse


@dataclass(frozen=True)
class ExampleCase:
    """What ``probe.diagnose`` needs from one training example."""

    line: int
    shape: str
    prompt: object  # str, or a tuple of {"role", "content"} messages (multi-turn, system)
    expected: str

    @property
    def multi_turn(self) -> bool:
        return not isinstance(self.prompt, str)


def _prompt(messages) -> object:
    msgs = tuple(dict(m) for m in messages)
    if len(msgs) == 1 and msgs[0]["role"] == "user":
        return msgs[0]["content"]
    return msgs


def case_of(record, line: int = 0) -> ExampleCase:
    """The case of one record (raises ValueError naming the line when there is none)."""
    where = f"line {line}" if line else "the record"
    try:
        r = parse(record)
    except BadRecord as err:
        raise ValueError(f"{where}: {err}") from None
    if r.shape == "text":
        raise ValueError(f"{where} is a plain-text record: it has no prompt/answer split to diagnose")
    if r.shape == "messages":
        last = max((i for i, m in enumerate(r.messages) if is_answer(m)), default=None)
        if last is None:
            raise ValueError(f"{where} has no assistant turn: nothing to expect")
        if last == 0:
            raise ValueError(f"{where} opens with the assistant turn: there is no prompt before it")
        return ExampleCase(line, r.shape, _prompt(r.messages[:last]), r.messages[last]["content"])
    if isinstance(r.prompt, str):
        return ExampleCase(line, r.shape, r.prompt, r.completion)
    answer = "".join(m["content"] for m in r.completion if is_answer(m))
    if not answer:
        raise ValueError(f"{where}: the completion has no assistant content")
    return ExampleCase(line, r.shape, _prompt(r.prompt), answer)


def shape_of(record) -> str | None:
    """"messages", "prompt_completion" or "text" as the trainer reads ``record``; None if unreadable."""
    try:
        return parse(record).shape
    except BadRecord:
        return None


def records_at(dataset, lines) -> dict:
    """{line: record} for each of ``lines`` (1-based, as ``DataLoss`` numbers them) of a file or an
    iterable, in one pass that stops after the last; a line that is not a record: a ValueError."""
    wanted = set(lines)
    for line in wanted:
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise ValueError(f"line must be a positive int, got {line!r}")
    source, _, _, open_records = open_dataset(dataset)
    out: dict = {}
    last = max(wanted, default=0)
    with progress_bar(None, False, "record", "record") as bar:
        for number, record in open_records(bar, []) if wanted else ():
            if number in wanted:
                if record is BLANK or record is None or isinstance(record, BadRecord):
                    raise ValueError(f"{source} line {number} is not a record")
                out[number] = record
            if number >= last:
                break
    missing = sorted(wanted - set(out))
    if missing:
        raise ValueError(f"{source} has no line {missing[0]}")
    return out


def record_at(dataset, line: int):
    """The record at ``line`` of a file or an iterable (see :func:`records_at`)."""
    return records_at(dataset, [line])[line]


def example_case(dataset, line: int) -> ExampleCase:
    """:func:`case_of` the record at ``line`` of ``dataset``."""
    return case_of(record_at(dataset, line), line)
