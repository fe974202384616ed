"""Evidence, not proof: retrain without the top examples, and without random ones, and rescore.

    v = a.verify(retrain, k=10)      # retrain: records -> adapter folder, the run's own recipe
    print(v)                         # for each retrain: P(expected), P(wrong) and the verdict, before -> after

``retrain`` is a callable ``records -> adapter folder`` (or model folder for a full fine-tune)
that trains with the run's own recipe and seed on the records it is given; it is called once
without the top ``k`` examples of ``method`` and once per control without ``k`` random
examples drawn with the same channel mix (as many of each channel as the top ``k`` holds,
from the examples outside the top ``k``), each control with its own seed. Each retrained
model rescores the case (at the divergent token: P(expected token), P(wrong token); the
verdict: "ok" when it ranks every expected token first, else "wrong") and every other case
given (``others``), so a removal that fixes this case and breaks another shows.

What it shows is what happened in these retrains: a difference between removing the top k
and removing random k, at this seed. It is not "the cause": training is noisy, examples
interact, and another set of k examples might do the same.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import torch

from ..core.numbers import json_numbers
from ..core.registry import register
from ..models.load import load
from ..render.attribution import verification_html, verification_section, verification_text
from .examples import read_examples, tuned_of
from .query import _logprobs, case_inputs, query_of


@dataclass(frozen=True)
class Score:
    """One case under one model."""

    title: str
    p_expected: float  # contrast: P(expected token) at the divergent token; loss: P(expected answer)
    p_wrong: float | None  # contrast: P(wrong token) there
    verdict: str  # "ok": every expected token ranked first; "wrong"

    def to_dict(self) -> dict:
        return json_numbers({"title": self.title, "p_expected": self.p_expected, "p_wrong": self.p_wrong,
                             "verdict": self.verdict})

    @classmethod
    def from_dict(cls, d: dict) -> "Score":
        return cls(str(d["title"]), float(d["p_expected"]), None if d.get("p_wrong") is None else float(d["p_wrong"]),
                   str(d["verdict"]))


@dataclass(frozen=True)
class Retrain:
    """One model: the tuned one as given, or a retrain without some examples."""

    label: str  # "tuned", "top", "random 1", ...
    removed: tuple[int, ...]  # dataset lines left out
    case: Score
    others: tuple[Score, ...] = ()
    folder: str = ""  # where the retrain put it

    def to_dict(self) -> dict:
        return {"label": self.label, "removed": list(self.removed), "case": self.case.to_dict(),
                "others": [o.to_dict() for o in self.others], "folder": self.folder}

    @classmethod
    def from_dict(cls, d: dict) -> "Retrain":
        return cls(str(d["label"]), tuple(map(int, d["removed"])), Score.from_dict(d["case"]),
                   tuple(Score.from_dict(o) for o in d.get("others", ())), str(d.get("folder", "")))


@dataclass(frozen=True)
class Verification:
    """The tuned model, the retrain without the top k, and the controls, on the same cases."""

    title: str
    expected_token: str | None
    wrong_token: str | None
    method: str
    k: int
    seed: int
    runs: tuple[Retrain, ...]  # [tuned, top, random 1, random 2, ...]

    @property
    def tuned(self) -> Retrain:
        return self.runs[0]

    @property
    def top(self) -> Retrain:
        return self.runs[1]

    @property
    def controls(self) -> tuple[Retrain, ...]:
        return self.runs[2:]

    @property
    def fixed(self) -> bool:
        """The top-k retrain gets the case right while no control does: the evidence asked for."""
        return self.top.case.verdict == "ok" and all(c.case.verdict != "ok" for c in self.controls)

    def to_dict(self) -> dict:
        return {"title": self.title, "expected_token": self.expected_token, "wrong_token": self.wrong_token,
                "method": self.method, "k": self.k, "seed": self.seed, "runs": [r.to_dict() for r in self.runs]}

    @classmethod
    def from_dict(cls, d: dict) -> "Verification":
        return cls(str(d.get("title", "")), d.get("expected_token"), d.get("wrong_token"), str(d["method"]),
                   int(d["k"]), int(d["seed"]), tuple(Retrain.from_dict(r) for r in d["runs"]))

    def __str__(self) -> str:
        return verification_text(self)

    def _repr_html_(self) -> str:
        return verification_html(self)


register(Verification, default_name="verification", section=verification_section)


@torch.no_grad()
def score_case(lm, q) -> Score:
    """The case's probabilities and verdict under ``lm`` (module docstring)."""
    lp = _logprobs(lm, list(q.ids), q.n_prompt)  # (answer tokens, vocab)
    targets = torch.tensor(q.ids[q.n_prompt:], device=lp.device)
    ok = bool((lp.argmax(-1) == targets).all())
    if q.kind == "contrast":
        row = lp[q.position - q.n_prompt]
        return Score(q.title, math.exp(float(row[q.expected_id])), math.exp(float(row[q.wrong_id])),
                     "ok" if ok else "wrong")
    return Score(q.title, math.exp(float(lp.gather(-1, targets[:, None]).sum())), None, "ok" if ok else "wrong")


def _controls(top: list, rows: list, k: int, n: int, seed: int) -> list[list[int]]:
    """``n`` random sets of k lines outside ``top`` with top's channel counts (filled from any
    channel where one has too few), each from its own seed."""
    want: dict[str, int] = {}
    for line in top:
        want[rows[line]] = want.get(rows[line], 0) + 1
    rest = [line for line in rows if line not in set(top)]
    if len(rest) < k:
        raise ValueError(f"only {len(rest)} examples outside the top {k}: no random control of size {k}")
    out = []
    for i in range(n):
        rng = random.Random(seed + i + 1)
        chosen: list[int] = []
        for chan, count in sorted(want.items()):
            pool = [line for line in rest if rows[line] == chan]
            chosen += rng.sample(pool, min(count, len(pool)))
        left = [line for line in rest if line not in set(chosen)]
        chosen += rng.sample(left, k - len(chosen))
        out.append(sorted(chosen))
    return out


def removal_sets(a, k: int = 10, *, method: str = "gradient", controls: int = 2,
                 seed: int = 0) -> list[tuple[str, list[int]]]:
    """What :func:`verify` removes, in its order: ``[("top", lines), ("random 1", lines), ...]``
    (the top ``k`` of ``method``, then ``controls`` random sets of k with the top's channel mix).
    The same for the same attribution and arguments: a caller can see which retrains it needs."""
    top = [e.line for e in a.top(method, k)]
    chan = {e.line: e.channel for e in a.examples}
    return [("top", top)] + [(f"random {i + 1}", s) for i, s in enumerate(_controls(top, chan, k, controls, seed))]


def kept_records(records, lines, removed) -> list:
    """The records (read at ``lines``) that stay when the ``removed`` lines are left out, in order."""
    gone = set(removed)
    return [r for line, r in zip(lines, records) if line not in gone]


_NAMES = itertools.count(1)


def _with_model(tuned, folder, fn):
    """``fn(lm)`` under the model ``retrain`` wrote: its adapter loaded beside the tuned one's
    (and removed after), or, for a plain model, the folder loaded on its own."""
    if tuned.adapters:
        name = f"probe-verify-{next(_NAMES)}"
        before = tuned.active_adapter or tuned.adapters[0]
        tuned.model.load_adapter(str(folder), adapter_name=name)
        try:
            tuned.use_adapter(name)
            return fn(tuned)
        finally:
            tuned.use_adapter(before)
            tuned.model.delete_adapter(name)
    return fn(load(folder, chat=tuned.chat))


def verify(a, retrain, k: int = 10, *, method: str = "gradient", controls: int = 2, seed: int = 0,
           others=(), pair=None, dataset=None) -> Verification:
    """Retrain without ``a``'s top ``k`` and without ``controls`` random sets (module docstring).

    Args:
        a: an :class:`probe.Attribution`.
        retrain: ``records -> folder``: the run's recipe and seed on the records given.
        others: more cases to rescore every time (a list, a Casebook: anything that says a
            prompt and an expected answer).
        pair, dataset: the pair and SFT set, needed when ``a`` was loaded from a file (an
            attribution computed in this session remembers both).

    Raises:
        ValueError: k out of range, fewer than 2 controls, no pair/dataset to retrain from.
    """
    if not callable(retrain):
        raise TypeError("retrain must be a callable records -> adapter folder")
    if not isinstance(controls, int) or controls < 2:
        raise ValueError(f"controls must be an int >= 2 (one random control is an anecdote), got {controls!r}")
    if not isinstance(k, int) or not 1 <= k < len(a.examples):
        raise ValueError(f"k must be between 1 and {len(a.examples) - 1}, got {k!r}")
    ctx = a.context
    if pair is not None or dataset is not None or ctx is None:
        if pair is None or dataset is None:
            raise ValueError("this attribution was loaded from a file: give pair= and dataset= to retrain")
        tuned = tuned_of(pair)
        rows, _, _ = read_examples(tuned, dataset, mask=a.mask, channel=None if a.channel == "<function>" else a.channel)
        records, lines = [r[4] for r in rows], [r[0] for r in rows]
    else:
        tuned, records, lines = ctx.tuned, ctx.records, ctx.lines
    by_line = dict(zip(lines, records))
    missing = [e.line for e in a.examples if e.line not in by_line]
    if missing:
        raise ValueError(f"the dataset has no records at lines {missing[:5]}: not the one attributed")
    q = query_of(tuned, {"prompt": a.prompt, "expected": a.expected, "wrong": a.wrong, "title": a.title},
                 kind=a.query)
    if q.kind == "contrast" and a.wrong is None and a.wrong_token is not None and q.wrong_text != a.wrong_token:
        raise ValueError(f"the tuned model now prefers {q.wrong_text!r}, not {a.wrong_token!r} as when "
                         "attributed: not the same model")
    other_qs = []
    for o in others:
        got = case_inputs(o)
        try:
            other_qs.append(query_of(tuned, got, kind="contrast"))
        except ValueError:  # the tuned model gets it right: watch its whole answer
            other_qs.append(query_of(tuned, got, kind="loss"))
    sets = removal_sets(a, k, method=method, controls=controls, seed=seed)

    def rescore(lm) -> tuple[Score, tuple[Score, ...]]:
        return score_case(lm, q), tuple(score_case(lm, oq) for oq in other_qs)

    c0, o0 = rescore(tuned)
    runs = [Retrain("tuned", (), c0, o0)]
    for label, removed in sets:
        folder = retrain(kept_records(records, lines, removed))
        c, o = _with_model(tuned, folder, rescore)
        runs.append(Retrain(label, tuple(removed), c, o, str(folder)))
    return Verification(a.title, a.expected_token, a.wrong_token, method, k, seed, tuple(runs))

