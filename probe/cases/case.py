"""One saved bad case: its inputs, the models' identities, all its results, and a note.

    >>> d = probe.diagnose(base, tuned, "List three colors.", check=probe.checks.json_valid())
    >>> case = probe.Case.from_result(d, models=(base, tuned), note="after epoch 3")
    >>> path = case.save("colors.json")
    >>> probe.Case.load(path) == case
    True

A case file is JSON (never pickle) with a schema version::

    {"format": "probe.case", "schema": 3, "case": {...}}

Schema 3 records the check as a spec next to its name (``check_spec``: ``{"answer": "Paris"}``,
the default of an expected answer since then, or ``{"contains": "Paris"}``, the old default).
Schema-2 files read as they are: no ``check_spec`` (None: not recorded), the check's name
(``contains('Paris')`` there) still says which check gave the verdict. Schema 2 (sampled pass
rates, per-run evidence and bad-case labels in diagnoses, ``labels`` on the case) reads schema-1
files too: their diagnoses get the labels their evidence supports.

Results are stored as ``{"type": "Diagnosis", "data": result.to_dict()}`` (the type's name
in :mod:`probe.core.registry`) and come back as the same frozen dataclasses, so a case opens whole without the model, on any machine. Floats that
are not finite (a logprob of -inf) are kept as JSON's ``-Infinity``, which Python reads back.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core import registry
from ..core.version import __version__
from ..core.files import write_atomically
from .schema import schema_problem
from ..core.vocab import ModelRole, Verdict
from ..diagnosis.labels import labels_of
from ..render.case import case_html
from ..render.text import case_text

FORMAT = "probe.case"
SCHEMA = 3  # bump when a saved file would no longer read back the same (and add a reader)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CaseFileError(ValueError):
    """A case file that cannot be read: which file, and why."""

    def __init__(self, path, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.reason = message


def result_class(name: str):
    """The result class saved under ``name`` (raises KeyError for an unknown type)."""
    return registry.named(name).cls


def _encode_result(result) -> dict:
    return {"type": registry.type_of(result).name, "data": result.to_dict()}


def _decode_result(name: str, item) -> Any:
    if not isinstance(item, dict) or "type" not in item or "data" not in item:
        raise ValueError(f"result {name!r} is not a {{'type', 'data'}} object")
    try:
        cls = result_class(item["type"])
    except (KeyError, TypeError):
        raise ValueError(f"result {name!r} has unknown type {item['type']!r}") from None
    return cls.from_dict(item["data"])


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced a case's results: enough to tell two checkpoints apart later."""

    role: ModelRole | str  # "base", "tuned" or "model" (a {role: LM} dict may name others)
    name: str
    source: str = ""
    adapter: str | None = None  # the PEFT adapter (path, or the active one's name and path)
    fingerprint: str = ""  # sha256 of the config and the weight files' names and sizes
    dtype: str = ""

    @classmethod
    def of(cls, lm, role: str = "model") -> "ModelInfo":
        """Describe a loaded :class:`probe.LM` (reads config and file names, not weights)."""
        model = lm.model
        adapter, adapter_path = _adapter_of(lm)
        parts = [_config_json(model), *_weight_files(lm.source)]
        if adapter:
            parts += [adapter, *_weight_files(adapter_path)]
        digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        dtype = str(getattr(model, "dtype", "")).replace("torch.", "")
        return cls(role=role, name=lm.name, source=lm.source, adapter=adapter, fingerprint=digest,
                   dtype=dtype)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelInfo":
        return cls(role=str(d["role"]), name=str(d["name"]), source=str(d.get("source", "")),
                   adapter=d.get("adapter"), fingerprint=str(d.get("fingerprint", "")),
                   dtype=str(d.get("dtype", "")))


def _adapter_of(lm) -> tuple[str | None, str]:
    """The adapter a tuned handle runs with, as a label (its folder, or ``name=folder``) and
    its folder; (None, "") for a plain model or the base side of a LoRA pair."""
    if not lm.adapter_paths or lm.adapter_enabled is False:
        return None, ""
    active = lm.active_adapter
    if active not in lm.adapter_paths:
        return lm.adapter, ""
    path = lm.adapter_paths[active]
    return (path if active == "default" else f"{active}={path}"), path


def _config_json(model) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return ""
    data = config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "_commit_hash"):
        data.pop(volatile, None)
    return json.dumps(data, sort_keys=True, default=str)


def _weight_files(source: str) -> list[str]:
    """Names and sizes of the weight files at ``source`` (a folder or one file)."""
    path = Path(source) if source else None
    if path is None or not path.exists():
        return []
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf", ".pt", ".pth"})
    return [f"{p.name}:{p.stat().st_size}" for p in files]


def versions() -> dict[str, str]:
    """probe's, transformers' and torch's versions, for the record."""
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:  # read once per process (metadata lookups cost ms per case)
    from importlib.metadata import PackageNotFoundError, version


    out = {"probe": __version__}
    for package in ("transformers", "torch", "peft"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40].strip("-")
    return slug or "case"


_SERIAL = itertools.count(secrets.randbits(48))  # random start per process, then one up per id


def new_id(title: str = "") -> str:
    """A fresh case id: a slug of the title, the time, and 12 hex digits that never repeat in
    one process (a counter from a random start: two processes collide with odds ~2^-48 per id)."""
    serial = next(_SERIAL) % (1 << 48)
    return f"{_slug(title)}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{serial:012x}"


def check_id(case_id: str) -> str:
    if not isinstance(case_id, str) or not _ID.match(case_id):
        raise ValueError(f"case id {case_id!r} must be 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit (it becomes a file name)")
    return case_id


@dataclass(frozen=True)
class Case:
    """One bad case, whole: inputs, models, results, verdict, tags, note, time made."""

    id: str
    results: dict[str, Any]  # name -> a result object (Diagnosis, TokenTrace, Sweep, ...)
    title: str = ""  # a human label, e.g. the case file's id
    prompt: Any = None  # str or list of chat messages, as given
    expected: str | None = None
    check: str | None = None  # the check's name
    force: str | None = None  # the forced prefix
    base_prompt: str | None = None  # what the base model continued
    verdict: Verdict | str | None = None  # one of diagnose()'s verdicts, or your own
    tags: tuple[str, ...] = ()
    note: str = ""
    models: tuple[ModelInfo, ...] = ()
    created: str = ""  # ISO 8601, UTC
    versions: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()  # bad-case labels (probe.labels.RULES) of its diagnosis
    check_spec: Any = None  # the check as data ({"answer": "Paris"}); None: a callable, or schema < 3

    def __post_init__(self):
        check_id(self.id)
        if not isinstance(self.results, dict) or not all(isinstance(k, str) for k in self.results):
            raise TypeError("results must be a dict of name -> result object")
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise TypeError(f"tags must be a list of strings, got {self.tags!r}")

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_result(cls, result, *, models=None, note: str = "", tags=(), id: str | None = None,
                    title: str | None = None, **inputs) -> "Case":
        """A case from any result object, a ``{name: result}`` dict, or a list of results.

        Inputs (prompt, expected, check, force, base_prompt, verdict) are read from the
        results where they say them (a Diagnosis says all); keyword arguments override.

        Args:
            models: the LM(s) behind the results: one LM, a ``(base, tuned)`` pair, or
                ``{role: LM}``. Their identities are recorded, not their weights.
            note, tags: free text and labels to find the case by.
            id: the case's id (default: made from the title, the time and random digits).
            title: a human label (default: a diagnosis' case id, else the first result name).
        """
        named = _name_results(result)
        found = _inputs_from(named)
        unknown = set(inputs) - {"prompt", "expected", "check", "check_spec", "force", "base_prompt", "verdict"}
        if unknown:
            raise TypeError(f"unknown case input(s): {sorted(unknown)}")
        found.update({k: v for k, v in inputs.items() if v is not None})
        diag_tags = found.pop("tags", ())
        all_tags = tuple(dict.fromkeys([*diag_tags, *((tags,) if isinstance(tags, str) else tags)]))
        title = title if title is not None else found.pop("title", None) or next(iter(named))
        found.pop("title", None)
        model_names = found.pop("model_names", {})
        found.setdefault("labels", ())
        return cls(
            id=check_id(id) if id is not None else new_id(title),
            results=named, title=title, tags=all_tags, note=note,
            models=_model_infos(models, model_names),
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            versions=versions(), **found,
        )

    # -- data -----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "id": self.id, "title": self.title, "prompt": self.prompt, "expected": self.expected,
            "check": self.check, "force": self.force, "base_prompt": self.base_prompt,
            "verdict": self.verdict, "tags": list(self.tags), "note": self.note,
            "models": [m.to_dict() for m in self.models], "created": self.created,
            "versions": dict(self.versions), "labels": list(self.labels),
            "check_spec": self.check_spec,
            "results": {name: _encode_result(r) for name, r in self.results.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        return cls(
            id=str(d["id"]), title=str(d.get("title", "")), prompt=d.get("prompt"),
            expected=d.get("expected"), check=d.get("check"), force=d.get("force"),
            base_prompt=d.get("base_prompt"), verdict=d.get("verdict"),
            tags=tuple(d.get("tags", ())), note=str(d.get("note", "")),
            models=tuple(ModelInfo.from_dict(m) for m in d.get("models", ())),
            created=str(d.get("created", "")), versions=dict(d.get("versions", {})),
            results={str(k): _decode_result(k, v) for k, v in d.get("results", {}).items()},
            labels=tuple(str(x) for x in d.get("labels", ())),
            check_spec=d.get("check_spec"),
        )

    def to_json(self) -> str:
        # ensure_ascii: any str survives, lone surrogates included, whatever the file encoding.
        return json.dumps({"format": FORMAT, "schema": SCHEMA, "case": self.to_dict()}, indent=1)

    @classmethod
    def from_json(cls, text: str, source="<string>") -> "Case":
        """Parse a case file's text; every problem is a CaseFileError naming ``source``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CaseFileError(source, f"not valid JSON (line {err.lineno}, column {err.colno}: "
                                        f"{err.msg}); the file is corrupt or not a probe case") from None
        except (ValueError, RecursionError) as err:  # an int over Python's digit limit, deep nesting
            raise CaseFileError(source, f"JSON that Python cannot hold ({type(err).__name__}: "
                                        f"{str(err)[:100]}); the file is corrupt or not a probe case") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CaseFileError(source, f"not a probe case file (no \"format\": \"{FORMAT}\")")
        schema = data.get("schema")
        if not isinstance(schema, int):
            raise CaseFileError(source, f"schema version missing or not a number: {schema!r}")
        if schema < SCHEMA and schema not in _READERS:
            raise CaseFileError(source, f"case schema {schema} is not one this probe reads "
                                        f"({sorted([*_READERS, SCHEMA])})")
        if schema > SCHEMA:
            raise CaseFileError(source, f"written by a newer probe (case schema {schema}; this probe "
                                        f"reads up to {SCHEMA}): upgrade probe to open it")
        problem = schema_problem(data)
        if problem:
            raise CaseFileError(source, f"does not match the case schema (probe/cases/case.schema.json): "
                                        f"{problem}")
        try:
            case = cls.from_dict(data["case"])
            return case if schema == SCHEMA else _READERS[schema](case)
        except Exception as err:  # noqa: BLE001 - whatever a result's from_dict makes of bad data
            raise CaseFileError(source, f"malformed case ({type(err).__name__}: {str(err)[:200]})") from None

    def save(self, path) -> Path:
        """Write the case to ``path`` atomically (temp file, fsync, rename)."""
        return write_atomically(path, self.to_json())

    @classmethod
    def load(cls, path) -> "Case":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(f"case file {str(path)!r} does not exist") from None
        except UnicodeDecodeError as err:
            raise CaseFileError(path, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
        return cls.from_json(text, source=path)

    @property
    def headline(self) -> "registry.Headline | None":
        """What the case says in one summary row: the first result with a verdict (a
        Diagnosis) speaks for it; else where the first result that says so goes wrong."""
        lines = [h for h in (registry.type_of(r).headline_of(r) for r in self.results.values()) if h]
        return next((h for h in lines if h.verdict is not None), None) or next(
            (registry.Headline(where=h.where) for h in lines if h.where is not None), None)

    # -- views ----------------------------------------------------------------------------

    def __str__(self) -> str:
        return case_text(self)

    def _repr_html_(self) -> str:
        return case_html(self)


def _from_schema_1(case: Case) -> Case:
    """A schema-1 case as schema 2: each diagnosis gets the labels its saved evidence
    supports (greedy runs, no sweep: never pattern_overfit), and the case their union."""
    from dataclasses import replace

    from ..diagnosis.result import Diagnosis  # lazy: torch loads here, not for `probe --help`

    results, labels = {}, []
    for name, r in case.results.items():
        if isinstance(r, Diagnosis) and not r.labels:
            r = replace(r, labels=labels_of(r))
            labels += list(r.labels)
        results[name] = r
    return replace(case, results=results, labels=case.labels or tuple(dict.fromkeys(labels)))


def _from_schema_2(case: Case) -> Case:
    """A schema-2 case as schema 3: no field changed meaning; ``check_spec`` (new) stays None,
    "not recorded", and the check's name says which check gave each verdict (before schema 3 an
    expected answer's default check was ``contains``: case-sensitive, anywhere)."""
    return case


_READERS = {1: _from_schema_1, 2: _from_schema_2}  # schema -> upgrade of a case read from it


def _name_results(result) -> dict[str, Any]:
    if isinstance(result, dict):
        if not result:
            raise ValueError("no results to make a case from")
        named = {str(k): v for k, v in result.items()}
    elif isinstance(result, (list, tuple)):
        if not result:
            raise ValueError("no results to make a case from")
        named = {}
        for r in result:
            base = _kind(r).default_name
            name, n = base, 2
            while name in named:
                name, n = f"{base}-{n}", n + 1
            named[name] = r
    else:
        named = {_kind(result).default_name: result}
    for name, r in named.items():
        _kind(r, name)  # fail now, not at save time, for a type a case cannot hold
    return named


def _kind(result, name: str | None = None) -> registry.ResultType:
    try:
        return registry.type_of(result)
    except TypeError as err:
        raise TypeError(f"result {name!r}: {err}" if name else str(err)) from None


def _inputs_from(named: dict[str, Any]) -> dict[str, Any]:
    """What the results themselves say about the case's inputs (first one that says wins)."""
    found: dict[str, Any] = {}
    for r in named.values():
        for key, value in registry.type_of(r).inputs_of(r).items():
            if value is not None and key not in found:
                found[key] = value
    return found


def _model_infos(models, names: dict[str, str]) -> tuple[ModelInfo, ...]:
    if models is None:
        return tuple(ModelInfo(role=role, name=name) for role, name in names.items())
    if isinstance(models, dict):
        pairs = list(models.items())
    elif isinstance(models, (list, tuple)):
        if len(models) != 2:
            raise ValueError("models= takes one LM, a (base, tuned) pair or a {role: LM} dict")
        pairs = [("base", models[0]), ("tuned", models[1])]
    else:
        pairs = [("model", models)]
    for role, lm in pairs:
        if not hasattr(lm, "model") or not hasattr(lm, "tokenizer"):
            raise TypeError(f"models[{role!r}] is a {type(lm).__name__}, not a probe.LM")
    return tuple(ModelInfo.of(lm, str(role)) for role, lm in pairs)
