"""The result types a :class:`probe.Case` can hold: how each is saved and how it is shown.

One :class:`ResultType` record per class says everything the rest of probe needs to know:

* ``name``: the ``"type"`` string in case files (``{"type": "Diagnosis", "data": ...}``);
* ``default_name``: the result's key in ``Case.results`` when none is given (``"diagnosis"``);
* ``inputs``: what it says about the case's inputs (prompt, expected, force, ..., verdict);
* ``section``: its HTML in a case page and the report (default: its ``_repr_html_`` without
  the style block, which the page has once);
* ``headline``: what it says in one row of a summary table (the report's and the CLI's verdict
  table), as a :class:`Headline` (default: nothing).

Its plain text is ``str(result)`` and its notebook view ``result._repr_html_()``. Saving a
case (probe.cases.case), rendering one (probe.render.case) and the report (probe.render.report) look
types up here by class (:func:`type_of`) and by saved name (:func:`named`), never by class name.

Adding a result type
--------------------
One class and its renderers; no other file changes:

1. The class (say ``Shift`` in ``probe/shifts/map.py``): a frozen dataclass with ``to_dict()`` /
   ``from_dict()``, ``__str__`` and ``_repr_html_`` calling its renderers in
   ``probe/render/shift.py``; build its HTML as ``styled(body)`` (``probe.render.style``).
2. Register it in its own module, under the class (or as a decorator above ``@dataclass``)::

       from ..core.registry import register

       register(Shift, default_name="shift", inputs=lambda r: {"prompt": r.prompt})

   ``name`` defaults to the class name and is written into case files: once files exist,
   never change it. ``section=`` (HTML body for a case page) and ``headline=`` (a function
   ``result -> Headline``) are optional.
3. Make sure its module is imported with ``probe`` (``probe/__init__.py`` imports the module
   that defines the public function making it; importing any ``probe.x`` runs it first): a
   case file naming a type that was never registered is reported as "unknown type".

The registry sits in ``probe.core`` and imports nothing above it; the renderers and the
result modules both reach down to it.

tests/core/test_registry.py registers a new type in the test itself and checks it round-trips
through a case file and shows in a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from .vocab import Verdict


@dataclass(frozen=True)
class Parting:
    """Where the tuned model first goes wrong, as a summary row states it.

    ``against="expected"``: the expected answer scored teacher-forced; ``left`` is the
    expected token where the model leaves it, ``right`` what it preferred.
    ``against="base"``: the two free generations; ``left`` is the base's token where they
    part, ``right`` the tuned model's (None: that generation ended there).
    """

    against: Literal["expected", "base"]
    diverged: bool
    left: str | None = None
    right: str | None = None


@dataclass(frozen=True)
class Headline:
    """What a result says in one row of a summary table. A result with a ``verdict`` (a
    Diagnosis) speaks for the whole case; otherwise the first ``where`` found is shown."""

    verdict: Verdict | str | None = None
    where: Parting | None = None
    p_base: float | None = None  # P(expected) under the base model
    p_tuned: float | None = None


@dataclass(frozen=True)
class ResultType:
    """How one result class is saved and shown (see the module docstring)."""

    cls: type
    name: str  # the "type" string in case files; never change it once files exist
    default_name: str  # the result's key in a case when none is given
    inputs: Callable[[Any], dict] | None = None  # result -> {"prompt": ..., "expected": ...}
    section: Callable[[Any], str] | None = None  # result -> HTML body (no style block)
    headline: Callable[[Any], Headline | None] | None = None

    def inputs_of(self, result) -> dict:
        return dict(self.inputs(result)) if self.inputs else {}

    def headline_of(self, result) -> Headline | None:
        return self.headline(result) if self.headline else None


_BY_CLASS: dict[type, ResultType] = {}
_BY_NAME: dict[str, ResultType] = {}


def register(cls: type | None = None, /, *, name: str | None = None, default_name: str | None = None,
             inputs=None, section=None, headline=None):
    """Register a result class (see the module docstring); returns the class.

    ``register(Cls, ...)`` or, as a decorator, ``@register(...)``. Registering a second class
    under a name already taken raises ValueError (it would make old files read wrong).
    """
    def add(klass: type) -> type:
        kind = ResultType(klass, name or klass.__name__, default_name or klass.__name__.lower(),
                          inputs, section, headline)
        other = _BY_NAME.get(kind.name)
        if other is not None and other.cls is not klass:
            raise ValueError(f"the result type name {kind.name!r} is taken by "
                             f"{other.cls.__module__}.{other.cls.__qualname__}")
        old = _BY_CLASS.pop(klass, None)
        if old is not None:
            _BY_NAME.pop(old.name, None)
        _BY_CLASS[klass] = _BY_NAME[kind.name] = kind
        return klass

    return add if cls is None else add(cls)


def unregister(cls: type) -> None:
    """Forget a registered class (for tests that register a throwaway type)."""
    kind = _BY_CLASS.pop(cls, None)
    if kind is not None:
        _BY_NAME.pop(kind.name, None)


_LOADERS: list[Callable[[], None]] = []  # import every module that registers a type (see probe)


def on_lookup(load: Callable[[], None]) -> None:
    """``load`` imports the modules that register result types; it runs before a lookup of
    every type or of a name not registered yet (``probe`` imports its modules lazily)."""
    _LOADERS.append(load)


def _load_all() -> None:
    while _LOADERS:
        _LOADERS.pop()()


def result_types() -> tuple[ResultType, ...]:
    """Every registered type."""
    _load_all()
    return tuple(_BY_NAME.values())


def type_of(result) -> ResultType:
    """The record of ``result``'s class (TypeError naming what a case can hold)."""
    kind = _BY_CLASS.get(type(result))
    if kind is None:
        _load_all()
        raise TypeError(f"a {type(result).__name__} is not a registered result type (a Case cannot "
                        f"hold it); it can hold: {', '.join(_BY_NAME)}")
    return kind


def named(name: str) -> ResultType:
    """The record saved under ``name`` in case files (KeyError for an unknown name)."""
    if name not in _BY_NAME:
        _load_all()
    return _BY_NAME[name]

