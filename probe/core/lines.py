"""One line reader for the files users bring: data sets (probe.data) and case files (probe
diagnose). Both read the same way:

* line by line, in constant memory: a line longer than ``MAX_LINE_BYTES`` is not held but read
  through in chunks and handed on as too long (its number, offset and size), so one huge line
  cannot take the machine's memory;
* ``.gz`` decompressed on the fly; a file that ends mid-stream (a truncated download) raises
  :class:`TruncatedFile`, naming the file and the last whole line read, after every whole line
  before it was handed on;
* a UTF-8 byte order mark at the start of the file is dropped (editors on Windows write one);
* each line's bytes are decoded as UTF-8 apart: a line that is not is handed on with the byte
  offset of the first bad byte (``errors="strict"``) or decoded with U+FFFD in its place
  (``errors="replace"``); the lines around it are read as usual.
"""

from __future__ import annotations

import contextlib
import json
import gzip
import zlib
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

MAX_LINE_BYTES = 4 << 20  # 4 MiB: a longer line is skipped and named, never held
_CHUNK = 1 << 16
BOM = "\ufeff"


class Line(NamedTuple):
    """One line of a file: its text without the line end, or why there is none."""

    number: int  # 1-based
    offset: int  # byte offset of the line's start (in the decompressed stream for .gz)
    text: str | None  # None: see ``error``
    error: str = ""  # "not UTF-8 ...", "too long ..."
    size: int = 0  # the line's length in bytes, its end included

    @property
    def where(self) -> str:
        return f"line {self.number} (byte {self.offset})"


class TruncatedFile(ValueError):
    """A compressed file ends mid-stream; ``lines`` whole lines were read before."""

    def __init__(self, path, lines: int, why: str):
        self.path, self.lines = Path(path), lines
        last = f"the last whole line read is line {lines}" if lines else "no whole line was read"
        super().__init__(f"{path}: the file ends mid-stream ({why}); it is truncated or corrupt; "
                         f"{last}")


def is_gzip(path: Path) -> bool:
    return bool(path.suffixes) and path.suffixes[-1].lower() == ".gz"


def _lines_of(stream, limit: int) -> Iterator[tuple[bytes | None, int]]:
    """(bytes of a line, its size) for each line; (None, size) for one over ``limit``."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, len(line)
            continue
        size = len(line)
        del line
        while True:  # read the rest of the long line through, holding one chunk at a time
            chunk = stream.readline(_CHUNK)
            size += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                break
        yield None, size


def read_lines(path, *, errors: str = "strict", limit: int = MAX_LINE_BYTES,
               progress: Callable[[int], None] | None = None) -> Iterator[Line]:
    """Every line of ``path`` (see the module docstring); ``progress(bytes read from disk)``
    is called now and then with the running total."""
    if errors not in ("strict", "replace"):
        raise ValueError(f"errors must be 'strict' or 'replace', got {errors!r}")
    path = Path(path)
    gz = is_gzip(path)
    number = offset = reported = 0
    with open(path, "rb") as raw, (gzip.open(raw) if gz else contextlib.nullcontext(raw)) as stream:
        try:
            for data, size in _lines_of(stream, limit):
                number += 1
                if progress is not None and raw.tell() - reported >= 1 << 20:
                    reported = raw.tell()
                    progress(reported)
                yield _line(number, offset, data, size, errors, limit)
                offset += size
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise TruncatedFile(path, number, str(err) or type(err).__name__) from None
        if progress is not None:
            progress(raw.tell())


def _line(number: int, offset: int, data: bytes | None, size: int, errors: str, limit: int) -> Line:
    if data is None:
        return Line(number, offset, None, f"too long ({size / 2**20:.1f} MiB; probe reads lines of up "
                                          f"to {limit / 2**20:g} MiB)", size)
    bom = 3 if number == 1 and data.startswith(b"\xef\xbb\xbf") else 0
    data = data[bom:].rstrip(b"\r\n")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        if errors == "strict":
            return Line(number, offset, None, f"not UTF-8 text ({err.reason} at byte "
                                              f"{offset + bom + err.start})", size)
        text = data.decode("utf-8", errors="replace")
    return Line(number, offset, text, "", size)


def json_objects(path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file (a BOM, .gz and long
    lines as :func:`read_lines`); a line that is not UTF-8, not JSON or not an object raises
    ``error`` naming the file and the line."""
    for line in read_lines(path):
        if line.text is None:
            raise error(f"{path}, {line.where}: {line.error}")
        if not line.text.strip():
            continue
        try:
            obj = json.loads(line.text)
        except json.JSONDecodeError as err:
            raise error(f"{path}, line {line.number}: not JSON ({err.msg})") from None
        except (ValueError, RecursionError) as err:  # an int over Python's digit limit, deep nesting
            raise error(f"{path}, line {line.number}: JSON Python cannot hold ({type(err).__name__})") from None
        if not isinstance(obj, dict):
            raise error(f"{path}, line {line.number}: not a JSON object")
        yield line.number, obj
