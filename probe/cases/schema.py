"""The case file format as a JSON Schema (``probe/cases/case.schema.json``, shipped with probe).

Every case file is checked against it when it is read (:func:`schema_problem`), so a file whose
fields have the wrong types (a number for the prompt, a numeric verdict) is named and skipped
instead of crashing a report later. Other tools can validate case files with the same file::

    import json, jsonschema
    from probe.cases.schema import CASE_SCHEMA
    jsonschema.validate(json.load(open("bad-cases/cases/france.json")), CASE_SCHEMA)

The schema covers the case's own fields and each result's ``{"type", "data"}`` envelope; the
data of each result type is checked by that type's ``from_dict`` (its own validator).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).with_name("case.schema.json")
CASE_SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema  # a core dependency (pyproject)

    cls = jsonschema.validators.validator_for(CASE_SCHEMA)
    cls.check_schema(CASE_SCHEMA)
    return cls(CASE_SCHEMA)


def schema_problem(data) -> str | None:
    """Why ``data`` (a parsed case file) does not match the schema, naming the field; None if it does."""
    errors = list(_validator().iter_errors(data))
    if not errors:
        return None
    import jsonschema

    err = jsonschema.exceptions.best_match(errors)
    where = ".".join(str(p) for p in err.absolute_path) or "the file"
    found = json.dumps(err.instance, ensure_ascii=True)
    found = found if len(found) <= 60 else found[:59] + "\u2026"
    return f"field {where}: {found} {_expected(err)}"


def _expected(err) -> str:
    """What the schema wanted at the failing field, in words."""
    schema = err.schema
    if err.validator in ("anyOf", "oneOf"):
        kinds = [s.get("type") for s in schema.get(err.validator, [])]
        return f"should be one of: {', '.join(map(str, kinds))}"
    if err.validator == "type":
        want = schema["type"]
        return f"should be {' or '.join(want) if isinstance(want, list) else want}"
    return f"does not match ({err.message[:120]})"
