"""Reading an SFT dataset record by record, and splitting a record into question and answer.

Shared by :func:`probe.data.count` and the training-data tools (``probe.data_loss``,
``probe.train.example_case``): one place knows the file shapes (JSON Lines, ``.gz``, plain
text), the record shapes (chat ``messages`` / ShareGPT ``conversations``, prompt/response or
completion, instruction/input/output, question/answer, text) and what a skipped line is.
Reading is streamed through :func:`probe.core.lines.read_lines`, so memory stays bounded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core.lines import TruncatedFile, is_gzip, read_lines

JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
ANSWER_ROLES = {"assistant", "gpt", "model", "bot", "chatbot"}
MAX_SKIPPED = 10  # skipped lines reported by number (all are counted)


@dataclass(frozen=True)
class Skipped:
    line: int
    reason: str



class BadRecord(Exception):
    """A record of an unknown shape (the message says why)."""


def message_text(value) -> str:
    if value is None:  # e.g. an assistant turn that only calls a tool
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # multimodal parts: keep the text ones
        return "\n".join(p if isinstance(p, str) else str(p.get("text", "")) for p in value
                         if isinstance(p, (str, dict)))
    raise BadRecord(f"message content is a {type(value).__name__}")


def _turns(messages) -> tuple[str, str]:
    """(question, answer) of a message list: assistant turns are the answer."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise BadRecord("'messages' is not a list of objects")
    question, answer = [], []
    for m in messages:
        role = m.get("role", m.get("from"))
        if not isinstance(role, str):
            raise BadRecord("a message has no 'role'")
        text = message_text(m.get("content", m.get("value")))
        (answer if role.lower() in ANSWER_ROLES else question).append(text)
    return "\n".join(question), "\n".join(answer)


def _side(value, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # conversational prompt/completion: all turns' text
        return "\n".join(t for t in _turns(value) if t)
    raise BadRecord(f"{key!r} is a {type(value).__name__}, not text")


def split(record) -> tuple[str | None, str | None, str | None]:
    """(question, answer, text) of one record; text is set only for plain text.

    Raises:
        ValueError: a record of an unknown shape (the message names its keys).
    """
    try:
        return _split(record)
    except BadRecord as err:
        raise ValueError(str(err)) from None


def parse(record) -> tuple | str:
    """(question, answer, text), or the reason the record is skipped."""
    if isinstance(record, BadRecord):
        return str(record)
    try:
        return _split(record)
    except BadRecord as err:
        return str(err)


def _split(record):
    if isinstance(record, str):
        return None, None, record
    if record is None:
        raise BadRecord("null is not a record")
    if not isinstance(record, dict):
        raise BadRecord(f"a {type(record).__name__} is not a record")
    for key in ("messages", "conversations"):
        if key in record:
            return (*_turns(record[key]), None)
    for q_key, a_keys in (("prompt", ("response", "completion")), ("question", ("answer",))):
        a_key = next((k for k in a_keys if k in record), None)
        if q_key in record and a_key:
            return _side(record[q_key], q_key), _side(record[a_key], a_key), None
    if "instruction" in record and "output" in record:
        extra = record.get("input") or ""
        question = _side(record["instruction"], "instruction")
        if extra:
            question += "\n" + _side(extra, "input")
        return question, _side(record["output"], "output"), None
    if isinstance(record.get("text"), str):
        return None, None, record["text"]
    raise BadRecord(f"unknown record shape (keys: {', '.join(sorted(map(str, record)))[:120]})")


# ---------------------------------------------------------------- reading


BLANK = object()  # a whitespace-only line


def _file_records(path: Path, bar, truncated: list) -> Iterator[tuple[int, object]]:
    """(line number, record | BadRecord | BLANK) for each line; constant memory (probe.core.lines).

    A .gz that ends mid-stream stops the stream; its error goes into ``truncated``."""
    names = [s.lower() for s in path.suffixes]
    gz = is_gzip(path)
    as_json = bool(JSON_SUFFIXES & set(names[-2:] if gz else names[-1:]))
    seen = [0]

    def tick(done: int) -> None:
        bar.update((done - seen[0]) / 1e6)
        seen[0] = done

    started = False
    try:
        for line in read_lines(path, errors="strict", progress=tick):
            text = line.text
            if text is None:  # not UTF-8 (a trainer's loader refuses it), or too long to hold
                where = "" if "at byte" in line.error else f", at byte {line.offset}"
                yield line.number, BadRecord(f"{line.error}{where}")
            elif not text.strip():
                yield line.number, BLANK
            elif not as_json:
                yield line.number, text
            else:
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as err:
                    if not started and text.lstrip().startswith("["):
                        raise ValueError(f"{path} holds a JSON array; probe streams JSON Lines (one "
                                         "object per line): convert it, e.g. jq -c '.[]'") from None
                    record = BadRecord(f"not JSON: {err.msg}")
                except (ValueError, RecursionError) as err:  # an int over Python's digit limit, deep nesting
                    record = BadRecord(f"JSON Python cannot hold ({type(err).__name__}: {str(err)[:80]})")
                started = True
                yield line.number, record
    except TruncatedFile as err:
        truncated.append(str(err))


def _iter_records(items: Iterable, bar) -> Iterator[tuple[int, object]]:
    for number, record in enumerate(items, 1):
        bar.update(1)
        yield number, BLANK if isinstance(record, str) and not record.strip() else record


def open_dataset(dataset):
    """(source label, total for the bar, unit, opener) of a dataset argument."""
    if isinstance(dataset, (str, os.PathLike)):
        path = Path(dataset)
        if not path.exists():
            raise FileNotFoundError(f"dataset file {str(dataset)!r} does not exist")
        if path.is_dir():
            raise IsADirectoryError(f"dataset {str(dataset)!r} is a folder; give a .jsonl or text file")
        return str(path), path.stat().st_size / 1e6, "MB", lambda bar, cut: _file_records(path, bar, cut)
    if isinstance(dataset, (bytes, dict)) or not isinstance(dataset, Iterable):
        raise TypeError(f"dataset must be a file path or an iterable of records (dicts or strings), "
                        f"got {type(dataset).__name__}")
    total = len(dataset) if hasattr(dataset, "__len__") else None
    return "<iterable>", total, "record", lambda bar, cut: _iter_records(dataset, bar)
