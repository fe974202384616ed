"""A folder of saved bad cases: one JSON file per case plus an index.

    >>> diagnosis = probe.diagnose(base, tuned, "What is the capital of France?", expected="Paris",
    ...                            case_id="france", tags=["capitals"])
    >>> book = probe.Casebook("bad-cases/")
    >>> case = book.add(probe.Case.from_result(diagnosis, models=(base, tuned)))
    >>> [c.title for c in book.filter(tag="capitals")]
    ['france']
    >>> book.to_html("bad-cases.html")
    PosixPath('bad-cases.html')

Layout::

    bad-cases/
      cases/<id>.json     one file per case, the source of truth (see probe.case)
      index.json          a cache of each case's summary, keyed by file name, size and mtime

Every write is atomic (temp file, fsync, rename), so a crash mid-save leaves every case that
was already there whole. The index is only a cache: a missing, stale or corrupt index is
rebuilt from the case files. A case file that cannot be read (corrupt, from a newer probe) is
reported in ``book.errors`` with its path and why; the rest of the book still loads.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from .case import Case, CaseFileError, check_id
from ..core.files import write_atomically
from ..render.report import casebook_html

INDEX_FORMAT = "probe.casebook-index"
INDEX_SCHEMA = 1


@dataclass(frozen=True)
class CaseSummary:
    """What the index knows of a case: enough to list and filter without reading it."""

    id: str
    title: str
    verdict: str | None
    tags: tuple[str, ...]
    note: str
    created: str
    file: str  # file name inside cases/

    @classmethod
    def of(cls, case: Case, file: str) -> "CaseSummary":
        return cls(case.id, case.title, case.verdict, tuple(case.tags), case.note[:200], case.created,
                   file)


class Casebook:
    """One folder of cases. Add, get, list, filter, remove; render them all as one HTML page."""

    def __init__(self, folder, *, create: bool = True):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"casebook {str(folder)!r} is a file, not a folder")
        if not self.folder.exists() and not create:
            raise FileNotFoundError(f"casebook folder {str(folder)!r} does not exist")
        self.cases_dir = self.folder / "cases"
        self.index_path = self.folder / "index.json"
        self.errors: list[CaseFileError] = []
        self._check_cases_dir()

    def _check_cases_dir(self) -> None:
        if self.cases_dir.exists() and not self.cases_dir.is_dir():
            raise NotADirectoryError(f"casebook {str(self.folder)!r}: {str(self.cases_dir)!r} is a file, "
                                     "not the folder of case files; move it away or open another folder")

    def __repr__(self) -> str:
        return f"Casebook({str(self.folder)!r}, {len(self)} cases)"

    # -- writing ----------------------------------------------------------------------------

    def add(self, case: Case, *, overwrite: bool = False) -> Case:
        """Save ``case`` into the book. An id already there needs ``overwrite=True``."""
        if not isinstance(case, Case):
            raise TypeError(f"Casebook.add takes a probe.Case, got {type(case).__name__} "
                            "(make one with probe.Case.from_result(result))")
        path = self._path(case.id)
        if path.exists() and not overwrite:
            raise FileExistsError(f"case {case.id!r} is already in {self.folder}; "
                                  "pass overwrite=True to replace it")
        case.save(path)
        self._summaries()  # refresh the index with the new file
        return case

    def remove(self, case_id: str) -> None:
        """Delete a case's file (KeyError if there is none)."""
        path = self._path(case_id)
        if not path.exists():
            raise KeyError(self._missing(case_id))
        path.unlink()
        self._summaries()

    # -- reading ----------------------------------------------------------------------------

    def get(self, case_id: str) -> Case:
        path = self._path(case_id)
        if not path.exists():
            raise KeyError(self._missing(case_id))
        return Case.load(path)

    def __contains__(self, case_id) -> bool:
        try:
            return self._path(case_id).exists()
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self._summaries())

    def __iter__(self) -> Iterator[Case]:
        """Every readable case, oldest first; unreadable ones go to ``self.errors``."""
        return iter(self.filter())

    def list(self, *, verdict: str | None = None, tag: str | None = None) -> list[CaseSummary]:
        """Summaries (from the index), oldest first, optionally only one verdict and/or tag."""
        rows = sorted(self._summaries().values(), key=lambda s: (s.created, s.id))
        return [s for s in rows if (verdict is None or s.verdict == verdict)
                and (tag is None or tag in s.tags)]

    def filter(self, *, verdict: str | None = None, tag: str | None = None) -> list[Case]:
        """The cases themselves, like :meth:`list`."""
        out = []
        for summary in self.list(verdict=verdict, tag=tag):
            try:
                out.append(Case.load(self.cases_dir / summary.file))
            except (CaseFileError, FileNotFoundError) as err:  # changed since the index was read
                self.errors.append(err if isinstance(err, CaseFileError)
                                   else CaseFileError(self.cases_dir / summary.file, str(err)))
        return out

    def verdicts(self) -> Counter:
        return Counter(s.verdict or "none" for s in self._summaries().values())

    def tags(self) -> Counter:
        return Counter(t for s in self._summaries().values() for t in s.tags)

    # -- report -----------------------------------------------------------------------------

    def to_html(self, path, *, title: str | None = None, verdict: str | None = None,
                tag: str | None = None, sections=()) -> Path:
        """Write one self-contained HTML page of the cases (offline, filterable, escaped).

        ``sections``: corpus-level results (a Shift, a Regression) shown above the cases.
        """
        cases = self.filter(verdict=verdict, tag=tag)
        page = casebook_html(cases, title=title or f"probe casebook: {self.folder.name}",
                             errors=[str(e) for e in self.errors], sections=sections)
        return write_atomically(path, page, errors="backslashreplace")

    # -- internals --------------------------------------------------------------------------

    def _path(self, case_id: str) -> Path:
        return self.cases_dir / f"{check_id(case_id)}.json"

    def _missing(self, case_id: str) -> str:
        near = [s.id for s in self._summaries().values() if s.id.startswith(str(case_id)[:8])][:5]
        hint = f"; similar: {near}" if near else ""
        return f"no case {case_id!r} in {self.folder}{hint}"

    def _read_index(self) -> dict:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
            if data.get("format") == INDEX_FORMAT and data.get("schema") == INDEX_SCHEMA:
                return data["entries"]
        except (OSError, ValueError, KeyError, AttributeError, TypeError, RecursionError):
            pass  # missing or corrupt: a cache, rebuilt below
        return {}

    def _summaries(self) -> dict[str, CaseSummary]:
        """file name -> summary for every readable case; refreshes ``errors`` and the index."""
        old = self._read_index()
        entries: dict[str, dict] = {}
        summaries: dict[str, CaseSummary] = {}
        self.errors = []
        self._check_cases_dir()
        files = sorted(self.cases_dir.glob("*.json")) if self.cases_dir.is_dir() else []
        for path in files:
            if path.name.startswith("."):
                continue  # a temp file of a save in progress (or killed)
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            key = [stat.st_size, stat.st_mtime_ns]
            summary = _cached(old.get(path.name), key)
            if summary is None:
                try:
                    summary = CaseSummary.of(Case.load(path), path.name)
                except (CaseFileError, OSError) as err:
                    self.errors.append(err if isinstance(err, CaseFileError) else CaseFileError(path, str(err)))
                    continue
            summaries[path.name] = summary
            entries[path.name] = {"key": key, "summary": {**asdict(summary), "tags": list(summary.tags)}}
        if entries != old:
            self._write_index(entries)
        return summaries

    def _write_index(self, entries: dict) -> None:
        try:
            write_atomically(self.index_path, json.dumps(
                {"format": INDEX_FORMAT, "schema": INDEX_SCHEMA, "entries": entries}, indent=0))
        except OSError:  # a read-only book still reads; the index is only a cache
            pass


def _cached(entry, key) -> CaseSummary | None:
    """The index's summary of a file whose size and mtime are ``key``; None if stale or bad."""
    try:
        if entry.get("key") != key:
            return None
        summary = CaseSummary(**{**entry["summary"], "tags": tuple(entry["summary"]["tags"])})
    except (AttributeError, KeyError, TypeError):
        return None
    ok = all(isinstance(getattr(summary, f), str) for f in ("id", "title", "note", "created", "file"))
    return summary if ok and all(isinstance(t, str) for t in summary.tags) and (
        summary.verdict is None or isinstance(summary.verdict, str)) else None


def open_casebook(book) -> Casebook:
    """A Casebook from a Casebook or a folder path."""
    if isinstance(book, Casebook):
        return book
    if isinstance(book, (str, os.PathLike)):
        return Casebook(book)
    raise TypeError(f"expected a Casebook or a folder path, got {type(book).__name__}")
