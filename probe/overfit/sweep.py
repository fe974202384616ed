"""Sweeps: fill a template with every combination of slot values and watch one answer.

    >>> s = probe.sweep(tuned, "What is the {relation} of {country}?", " Beijing",
    ...                 relation=["capital", "language"], country=["Japan", "France", "China"])
    >>> print(s.summary)     # which slot holds the trigger, in words
    >>> s.figure()           # heatmap country x relation
    >>> s.row(country="Japan", relation="capital").greedy

Every filled prompt is scored with ``watch`` as its continuation, all in one batched
teacher-forced pass (:func:`probe.score_many`): P(watch) is exact for multi-token strings
(the product over its tokens), and the greedy answer is the top-1 token at the first answer
position. No generation.
"""

from __future__ import annotations

import itertools
import math
import string
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..engine.trace import Alternative
from ..core.engines import as_engine
from ..core.progress import progress as progress_bar
from ..engine.scoring import _batches, _vocab_size, encode_pairs, score_batch, score_many
from ..core.vocab import PatternKind
from ..core.registry import register
from ..render.sweep import summary_text, sweep_figure, sweep_html, sweep_text

# Columns of Sweep.table(); a slot may not take one of these names.
COLUMNS = ("prompt", "prob", "logprob", "first_rank", "first_prob", "greedy", "greedy_prob",
           "watch_is_greedy", "straddles")


def _num(x: float) -> float | None:
    """JSON-safe float: None for NaN/inf."""
    return float(x) if math.isfinite(x) else None


def _lp(x) -> float:
    return -math.inf if x is None else float(x)


@dataclass(frozen=True)
class SweepRow:
    """One filled prompt and what the model thinks of the watched answer after it."""

    values: tuple[str, ...]  # one value per slot, in Sweep.slots order
    prompt: str  # the filled template (before any chat template)
    prob: float  # P(watch) as the continuation: product over all of its tokens
    logprob: float  # log of that (sum of per-token logprobs, float32 softmax)
    first_rank: int  # rank of the watch's first token (1 = the model's top choice)
    first_prob: float
    greedy: str  # the top-1 token at the first answer position
    greedy_prob: float
    watch_is_greedy: bool  # every watch token is the top choice: greedy decoding writes it
    top: tuple[Alternative, ...] = ()  # top-k alternatives at the first answer position
    straddles: bool = False  # the watch's first token begins inside the prompt

    def to_dict(self) -> dict:
        return {"values": list(self.values), "prompt": self.prompt, "prob": self.prob,
                "logprob": _num(self.logprob), "first_rank": self.first_rank,
                "first_prob": self.first_prob, "greedy": self.greedy, "greedy_prob": self.greedy_prob,
                "watch_is_greedy": self.watch_is_greedy, "straddles": self.straddles,
                "top": [{"id": a.id, "text": a.text, "prob": a.prob, "logprob": _num(a.logprob)}
                        for a in self.top]}

    @classmethod
    def from_dict(cls, d: dict) -> "SweepRow":
        top = tuple(Alternative(int(a["id"]), str(a["text"]), float(a["prob"]), _lp(a["logprob"]))
                    for a in d.get("top", ()))
        return cls(tuple(str(v) for v in d["values"]), str(d["prompt"]), float(d["prob"]),
                   _lp(d["logprob"]), int(d["first_rank"]), float(d["first_prob"]), str(d["greedy"]),
                   float(d["greedy_prob"]), bool(d["watch_is_greedy"]), top, bool(d.get("straddles", False)))


@dataclass(frozen=True)
class Sweep:
    """P(watch) over every combination of slot values (rows in itertools.product order)."""

    template: str
    watch: str
    slots: dict[str, tuple[str, ...]]  # slot name -> its values, in the order given
    rows: tuple[SweepRow, ...]
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # top_k, raw, system, chat

    def row(self, **values) -> SweepRow:
        """The row with these slot values, e.g. ``s.row(country="Japan", relation="capital")``."""
        if set(values) != set(self.slots):
            raise ValueError(f"give a value for every slot: {', '.join(self.slots)}")
        key = tuple(str(values[name]) for name in self.slots)
        for r in self.rows:
            if r.values == key:
                return r
        raise KeyError(f"no row with {values}")

    def table(self) -> list[dict]:
        """One plain dict per row: the slot values under their names, then the numbers."""
        return [{**dict(zip(self.slots, r.values)), **{k: getattr(r, k) for k in COLUMNS}}
                for r in self.rows]

    def grid(self, x: str, y: str | None = None):
        """Mean P(watch) per (x value, y value) cell, averaged over any other slots.

        Returns:
            (x values, y values or None, means[y][x] (a flat list when y is None),
            rows per cell: the row indices averaged into each cell, same shape).
        """
        for name in (x, y):
            if name is not None and name not in self.slots:
                raise ValueError(f"no slot named {name!r}; slots: {', '.join(self.slots)}")
        if x == y:
            raise ValueError("x and y must be two different slots")
        names = list(self.slots)
        xi = names.index(x)
        yi = None if y is None else names.index(y)
        xs, ys = self.slots[x], (None if y is None else self.slots[y])
        cells: dict[tuple, list[int]] = {}
        for i, r in enumerate(self.rows):
            cells.setdefault((r.values[xi], None if yi is None else r.values[yi]), []).append(i)
        mean = lambda idx: sum(self.rows[i].prob for i in idx) / len(idx) if idx else math.nan
        if ys is None:
            members = [cells.get((a, None), []) for a in xs]
            return list(xs), None, [mean(m) for m in members], members
        members = [[cells.get((a, b), []) for a in xs] for b in ys]
        return list(xs), list(ys), [[mean(m) for m in line] for line in members], members

    def figure(self, x: str | None = None, y: str | None = None):
        """Plotly heatmap of P(watch), x by y (default: the first two slots); bars for one slot."""
        return sweep_figure(self, x=x, y=y)

    @property
    def summary(self) -> str:
        """In words: per slot, does the watched answer ignore it or hinge on it? (see pattern)"""
        return summary_text(self, pattern(self))

    def to_dict(self) -> dict:
        return {"template": self.template, "watch": self.watch,
                "slots": {k: list(v) for k, v in self.slots.items()},
                "rows": [r.to_dict() for r in self.rows], "model": self.model,
                "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, d: dict) -> "Sweep":
        return cls(str(d["template"]), str(d["watch"]),
                   {str(k): tuple(str(v) for v in vs) for k, vs in d["slots"].items()},
                   tuple(SweepRow.from_dict(r) for r in d["rows"]), str(d.get("model", "")),
                   dict(d.get("settings", {})))

    def __str__(self) -> str:
        return sweep_text(self)

    def _repr_html_(self) -> str:
        return sweep_html(self)


def slot_names(template: str) -> list[str]:
    """The named ``{slot}`` fields of a str.format-style template, in order of appearance.

    Raises:
        TypeError: a template that is not a str.
        ValueError: a malformed template, positional ``{}``/``{0}`` fields, attribute or
            index fields (``{a.b}``, ``{a[0]}``), or no field at all.
    """
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"template {template!r} is not a valid format string: {err}") from None
    names: list[str] = []
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError(f"template {template!r} has a positional field {{{name}}}: name every "
                             "slot, e.g. {country}")
        if not name.isidentifier() or "{" in (spec or ""):
            raise ValueError(f"template field {{{name}}} is not a plain {{name}} slot")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"template {template!r} has no {{slot}} fields: there is nothing to sweep")
    return names


def _slot_values(name: str, values) -> tuple[str, ...]:
    """A slot's values as strings; a bare string is one value."""
    if isinstance(values, str):
        values = [values]
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"slot {name!r} needs a list of values, got {type(values).__name__}") from None
    if not values:
        raise ValueError(f"slot {name!r} has no values")
    for v in values:
        if not isinstance(v, (str, int, float)):
            raise TypeError(f"slot {name!r}: values must be str or numbers, got {type(v).__name__}")
    out = tuple(str(v) for v in values)
    dupes = sorted({v for v in out if out.count(v) > 1})
    if dupes:
        raise ValueError(f"slot {name!r} lists {', '.join(map(repr, dupes))} more than once")
    return out


def check_slots(template: str, slots: dict) -> dict[str, tuple[str, ...]]:
    """Validate the template against the slot keywords; name -> values (keyword order)."""
    fields = slot_names(template)
    missing = [f for f in fields if f not in slots]
    if missing:
        raise ValueError(f"template fields without values: {', '.join(missing)} "
                         f"(pass e.g. {missing[0]}=[...])")
    extra = [k for k in slots if k not in fields]
    if extra:
        raise ValueError(f"slots not in the template: {', '.join(extra)} "
                         f"(template fields: {', '.join(fields)})")
    clash = [k for k in slots if k in COLUMNS]
    if clash:
        raise ValueError(f"slot name {clash[0]!r} is taken by a table column; rename it")
    return {name: _slot_values(name, values) for name, values in slots.items()}


def check_watch(watch) -> str:
    if not isinstance(watch, str):
        raise TypeError(f"watch must be a str, got {type(watch).__name__}")
    if watch == "":
        raise ValueError("watch is empty: give the answer to watch, e.g. ' Beijing'")
    return watch


def sweep(lm, template: str, watch: str, *, top_k: int = 5, batch_size: int = 64,
          raw: bool | None = None, system: str | None = None, progress: bool = False,
          engine=None, **slots) -> Sweep:
    """P(``watch``) after every filling of ``template`` (all slot-value combinations).

    Args:
        lm: from :func:`probe.load`.
        template: str.format-style text with named fields, e.g. "What is the {relation} of {country}?".
        watch: the answer to watch, exactly as it would follow the (rendered) prompt.
        top_k: alternatives kept at the first answer position (at least 1: the greedy answer).
        batch_size: prompts per forward pass.
        raw, system: as in :func:`probe.score`.
        progress: show a progress bar.
        engine: where the batches run: None (here, ``score_many``) or ``probe.ray_engine(...)``
            (workers that rebuild ``lm`` from how it was loaded); the same batches and numbers.
        **slots: one list of values per template field (a bare string is one value). The
            names ``lm``, ``template``, ``watch`` and the keyword arguments above can't be slots.

    Returns:
        A :class:`Sweep` with one row per combination, in ``itertools.product`` order.

    Raises:
        TypeError/ValueError: a bad template, slots that don't match its fields (named), a slot
            without values, an empty watch string, ``top_k`` < 1.
    """
    values = check_slots(template, slots)
    check_watch(watch)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1 (the greedy answer is top-1), got {top_k!r}")
    combos = list(itertools.product(*values.values()))
    prompts = [template.format_map(dict(zip(values, combo))) for combo in combos]
    if engine is None:
        traces = score_many(lm, [(p, watch) for p in prompts], batch_size=batch_size, top_k=top_k,
                            progress=progress, raw=raw, system=system)
    else:  # the batches score_many forms, each run by the engine's workers: the same bits
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        encoded = encode_pairs(lm, [(p, watch) for p in prompts], raw=raw, system=system)
        chunks = list(_batches(encoded, batch_size, _vocab_size(lm)))
        batches = [(lm.active_adapter, [encoded[i] for i in c]) for c in chunks]
        with progress_bar(len(prompts), progress, "sweep", "prompt") as bar:
            done = as_engine(engine).map_batches(partial(score_batch, top_k=top_k), batches, pair=(lm, lm),
                                                 on_batch=lambda b, r: bar.update(len(r)))
        traces = [None] * len(prompts)
        for c, got in zip(chunks, done):
            for i, t in zip(c, got):
                traces[i] = t
    rows = []
    for combo, prompt, t in zip(combos, prompts, traces):
        first, best = t.steps[0], t.steps[0].top[0]
        rows.append(SweepRow(
            values=combo, prompt=prompt, prob=math.exp(t.total_logprob), logprob=t.total_logprob,
            first_rank=first.rank, first_prob=first.prob, greedy=best.text, greedy_prob=best.prob,
            watch_is_greedy=all(s.rank == 1 for s in t.steps), top=first.top, straddles=t.straddles,
        ))
    chat = lm.chat if raw is None else not raw
    settings = {"top_k": top_k, "raw": raw, "system": system, "chat": bool(chat)}
    return Sweep(template, watch, values, tuple(rows), lm.name, settings)


# The summary rule. A row is "high" or "low" only when the probabilities split clearly.
LOW = 0.05  # below this P(watch) is low whatever the rest: a high group must reach it
HIGH = 0.5  # with no clear split, P >= this everywhere means the answer stands everywhere
SEPARATION = 3.0  # a clear split: every high P is at least 3x every low P
LITTLE = 0.25  # no split: a slot whose per-value means span < 25% of the full range barely matters


@dataclass(frozen=True)
class SlotEffect:
    """What one slot does to P(watch)."""

    name: str
    ignored: bool  # the watched answer is the same (high or low) whatever this slot's value
    trigger: tuple[str, ...]  # values that occur in high rows (kind "split")
    means: tuple[float, ...]  # mean P(watch) per value, in slot order


@dataclass(frozen=True)
class Pattern:
    """The shape of a sweep, the basis of ``Sweep.summary``.

    ``kind`` is "split" (the rows fall clearly into high and low), "high" (no split, P >= HIGH
    everywhere), "low" (every P < LOW) or "gradual" (P moves, but with no clear split).
    """

    kind: PatternKind
    high: frozenset[int]  # indices of the high rows ("split"; all rows for "high")
    effects: tuple[SlotEffect, ...]
    clean: bool  # high rows = every combination of the trigger values (a product)


def high_rows(probs: list[float]) -> frozenset[int] | None:
    """The high group of the clearest split of ``probs``, or None if none is clear.

    Candidates are the cut points between sorted probabilities where every P above is at
    least ``SEPARATION`` times every P below and at least ``LOW``; among them the one that
    separates the two groups' means best (Otsu's between-class variance) wins.
    """
    order = sorted(range(len(probs)), key=probs.__getitem__)
    p = [probs[i] for i in order]
    n, total, below, best = len(p), sum(p), 0.0, None
    for k in range(1, n):  # low = p[:k], high = p[k:]
        below += p[k - 1]
        if p[k] < LOW or p[k] < SEPARATION * p[k - 1]:
            continue
        spread = k * (n - k) * ((total - below) / (n - k) - below / k) ** 2
        if best is None or spread > best[0]:
            best = (spread, k)
    return None if best is None else frozenset(order[best[1]:])


def pattern(s: Sweep) -> Pattern:
    """Classify a sweep's P(watch) and what each slot does to it (see the constants above)."""
    probs = [r.prob for r in s.rows]
    names = list(s.slots)
    means = [tuple(s.grid(name)[2]) for name in names]
    high = high_rows(probs)
    if high is None:
        lo, hi = min(probs), max(probs)
        kind = "high" if lo >= HIGH else "low" if hi < LOW else "gradual"
        effects = tuple(
            SlotEffect(name, kind != "gradual" or max(m) - min(m) <= LITTLE * (hi - lo), (), m)
            for name, m in zip(names, means))
        return Pattern(kind, frozenset(range(len(probs))) if kind == "high" else frozenset(), effects, False)
    combos = {s.rows[i].values for i in high}
    effects, size = [], 1
    for i, name in enumerate(names):
        ignored = all(c[:i] + (v,) + c[i + 1:] in combos for c in combos for v in s.slots[name])
        trigger = tuple(v for v in s.slots[name] if any(c[i] == v for c in combos))
        effects.append(SlotEffect(name, ignored, trigger, means[i]))
        size *= len(trigger)
    return Pattern("split", high, tuple(effects), size == len(combos))


register(Sweep, default_name="sweep", inputs=lambda r: {"prompt": r.template})
