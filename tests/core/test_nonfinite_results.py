"""Every registered result type saves the non-finite numbers its fields can hold and reads them
back exactly: -inf stays -inf, +inf stays +inf, NaN stays NaN (strict JSON on the way).

The types come from the registry, so a new type is covered without editing this file: one of
each is built from its dataclass fields' annotations (strings "x", ints 1, floats 0.5, one item
per tuple, nested results likewise), then each float in it is set in turn to each non-finite
value its field can hold (``HOLDS``, by field name) and sent through ``to_dict`` -> strict JSON ->
``from_dict``. A float field named nowhere in ``HOLDS`` is one that is finite by construction
(a probability, an entropy, a setting); a new field that can be non-finite belongs in ``HOLDS``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing

import pytest

import probe  # noqa: F401 - registers every built-in result type
from probe.core.registry import result_types

INF, NAN = math.inf, math.nan
LOGPROB = (-INF,)  # a masked vocabulary entry; NaN and +inf logits are refused where they are read
HOLDS = {
    # log-probabilities and log-likelihoods
    "logprob": LOGPROB, "base_logprob": LOGPROB, "tuned_logprob": LOGPROB, "logliks": LOGPROB,
    # differences of two of them: -inf - x, x - -inf, -inf - -inf
    "delta": (INF, -INF, NAN), "gain": (INF, -INF, NAN), "rest_change": (INF, -INF, NAN),
    # losses (-logprob) and KL >= 0: +inf where a model gives probability 0
    "base_loss": (INF,), "tuned_loss": (INF,), "base_losses": (INF,), "tuned_losses": (INF,), "kl": (INF,),
    "max_diff": (INF,),
}


def _build(tp):
    """A value of annotation ``tp``: one item per collection, nested dataclasses built too."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _build(next(a for a in args if a is not type(None)))
    if origin is typing.Literal:
        return args[0]
    if tp in (str, bool, int, float):
        return {str: "x", bool: False, int: 1, float: 0.5}[tp]
    if origin is tuple:
        return (_build(args[0]),) if len(args) == 2 and args[1] is Ellipsis else tuple(_build(a) for a in args)
    if origin in (list, typing.Sequence):
        return [_build(args[0])] if args else []
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name]) for f in dataclasses.fields(tp) if f.init})
    return {} if (origin is dict or tp is dict) else None


def _floats(obj, path=()):
    """(path, field name) of every float in ``obj``; the field name is the dataclass field
    that holds it (directly or through a list)."""
    if isinstance(obj, float):
        yield path
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _floats(getattr(obj, f.name), path + (f.name,))
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from _floats(v, path + (i,))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _floats(v, path + (k,))


def _field(path) -> str:
    return next(p for p in reversed(path) if isinstance(p, str))


def _get(obj, path):
    for p in path:
        obj = getattr(obj, p) if dataclasses.is_dataclass(obj) else obj[p]
    return obj


def _put(obj, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{head: _put(getattr(obj, head), rest, value)})
    if isinstance(obj, dict):
        return {**obj, head: _put(obj[head], rest, value)}
    items = [(_put(v, rest, value) if i == head else v) for i, v in enumerate(obj)]
    return type(obj)(items)


def _same(a: float, b) -> bool:
    return isinstance(b, float) and (math.isnan(b) if math.isnan(a) else a == b)


TYPES = {t.name: t.cls for t in result_types()}


@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_non_finite_number_a_result_can_hold_comes_back_exactly(name):
    cls = TYPES[name]
    result = _build(cls)
    assert type(result) is cls
    wrong = []
    for path in _floats(result):
        for value in HOLDS.get(_field(path), ()):
            changed = _put(result, path, value)
            try:
                back = cls.from_dict(json.loads(json.dumps(changed.to_dict(), allow_nan=False)))
                got = _get(back, path)
            except Exception as err:  # noqa: BLE001 - reported below with its path
                got = f"{type(err).__name__}: {err}"
            if not _same(value, got):
                wrong.append(f"{'.'.join(map(str, path))} = {value} came back as {got!r}")
    assert not wrong, f"{name}: " + "; ".join(wrong)


def test_the_builder_reaches_the_numbers_that_matter():
    """The check above is only as good as the floats it finds: the ones the issue named are there."""
    fields = {name: {_field(p) for p in _floats(_build(cls))} for name, cls in TYPES.items()}
    assert {"logprob", "delta"} <= fields["Occlusion"]
    assert {"gain", "kl", "tuned_logprob"} <= fields["Shift"]
    assert {"logprob", "entropy"} <= fields["TokenTrace"]
    assert len(TYPES) >= 17
