"""The result of :func:`probe.attribute`: every training example's scores for one case.

    a = probe.attribute((base, tuned), case, "train.jsonl", channel="source")
    [e.line for e in a.top("gradient", 3)]      # the most positive influence first
    a.channel_share("gradient")                 # {"capital-beijing": 0.8, ...} of the positive total
    a.agreement()                               # Spearman and top-k overlap between methods
    print(a)                                    # the text view; a._repr_html_() in a notebook

Scores (one column per method; higher: more responsible for the bad answer):

* ``gradient``: TracIn dot product (:mod:`probe.attribution.gradients`), in the query's units
  per unit of learning rate (nats of log-probability contrast, or of loss);
* ``gradient_cos``: the learning-rate weighted mean cosine of the same gradients, in [-1, 1];
* ``representation``: cosine of hidden states (:mod:`probe.attribution.representation`);
* ``lexical``: BM25 (:mod:`probe.attribution.lexical`).

Every example keeps its line, channel and scores; the top ``keep`` of each method also keep
their token strip (the tokens, and which of them the trainer's mask scores: the tokens whose
loss carries the gradient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.numbers import json_numbers
from ..core.registry import register
from ..render.attribution import attribution_html, attribution_section, attribution_text
from .checkpoints import Checkpoint
from .verify import verify

SCORES = ("gradient", "gradient_cos", "representation", "lexical")


@dataclass(frozen=True)
class ExampleScore:
    """One training example's scores."""

    line: int  # 1-based line of the dataset (record number for an iterable)
    channel: str
    scores: dict[str, float]  # score name (SCORES) -> value
    tokens: tuple[str, ...] = ()  # the example's token strip (kept for the top examples)
    scored: tuple[bool, ...] = ()  # per token: in the trainer's loss mask (carries the gradient)

    def to_dict(self) -> dict:
        return {"line": self.line, "channel": self.channel, "scores": dict(self.scores),
                "tokens": list(self.tokens), "scored": list(self.scored)}

    @classmethod
    def from_dict(cls, d: dict) -> "ExampleScore":
        return cls(int(d["line"]), str(d["channel"]),
                   {str(k): (math.nan if v is None else float(v)) for k, v in d["scores"].items()},
                   tuple(map(str, d.get("tokens", ()))), tuple(map(bool, d.get("scored", ()))))


def _ranks(values: list[float]) -> list[float]:
    """Average ranks (ties share the mean rank), 1 = smallest."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks); nan when a side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    n = len(ra)
    if n < 2:
        return math.nan
    ma, mb = math.fsum(ra) / n, math.fsum(rb) / n
    cov = math.fsum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.fsum((x - ma) ** 2 for x in ra)
    vb = math.fsum((y - mb) ** 2 for y in rb)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else math.nan


@dataclass(frozen=True)
class Agreement:
    """How two score columns agree over every example."""

    a: str
    b: str
    spearman: float
    overlap: float  # |top-k of a & top-k of b| / k
    k: int

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "spearman": self.spearman, "overlap": self.overlap, "k": self.k}

    @classmethod
    def from_dict(cls, d: dict) -> "Agreement":
        return cls(str(d["a"]), str(d["b"]), math.nan if d["spearman"] is None else float(d["spearman"]),
                   float(d["overlap"]), int(d["k"]))


@dataclass(frozen=True)
class ChannelShare:
    """A channel's part of a score column."""

    name: str
    examples: int
    positive: float  # sum of its positive scores
    share: float  # positive / the positive total over every channel (nan when that is 0)
    mean: float  # mean score of its examples
    in_top: int  # its examples among the column's top ``keep``

    def to_dict(self) -> dict:
        return {"name": self.name, "examples": self.examples, "positive": self.positive, "share": self.share,
                "mean": self.mean, "in_top": self.in_top}

    @classmethod
    def from_dict(cls, d: dict) -> "ChannelShare":
        f = lambda k: math.nan if d.get(k) is None else float(d[k])  # noqa: E731
        return cls(str(d["name"]), int(d["examples"]), f("positive"), f("share"), f("mean"), int(d["in_top"]))


@dataclass(frozen=True)
class Attribution:
    """Which training examples a case's bad answer comes from, by method (module docstring)."""

    title: str  # the case's title or id ("" when it has none)
    prompt: str | tuple[dict, ...]  # a string, or messages
    expected: str
    query: str  # "contrast" | "loss"
    wrong: str | None  # the wrong answer given, or None (the tuned model's preferred token)
    expected_token: str | None  # contrast: the expected token where the tuned model leaves it
    wrong_token: str | None  # contrast: the token it prefers there
    source: str  # the dataset
    examples: tuple[ExampleScore, ...]  # every example scored, in line order
    methods: tuple[str, ...]  # the score columns present (SCORES order)
    checkpoints: tuple[Checkpoint, ...] = ()  # the gradient's TracIn checkpoints
    keep: int = 10  # top examples per column keeping their token strips
    projected: bool = False  # the gradient scores went through a random projection
    mask: str | None = None  # the mask asked for (None: the trainer's default per shape)
    channel: str | None = None  # the record field the channels come from
    skipped: int = 0  # records not scored (unreadable, nothing under the mask, too long)
    models: dict[str, str] = field(default_factory=dict)
    # what verify() needs when this result was computed here and now: the tuned LM and the records
    context: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.prompt, str):  # messages: one form, whatever was given
            object.__setattr__(self, "prompt", tuple(dict(m) for m in self.prompt))

    def __len__(self) -> int:
        return len(self.examples)

    def column(self, method: str) -> list[float]:
        if method not in self.methods:
            raise KeyError(f"no {method!r} scores; this attribution has {list(self.methods)}")
        return [e.scores[method] for e in self.examples]

    def top(self, method: str = "gradient", k: int | None = None) -> list[ExampleScore]:
        """The examples with the highest ``method`` score first (ties: the earlier line)."""
        self.column(method)
        ranked = sorted(self.examples, key=lambda e: (-_key(e.scores[method]), e.line))
        return ranked[: self.keep if k is None else k]

    def example(self, line: int) -> ExampleScore:
        for e in self.examples:
            if e.line == line:
                return e
        raise KeyError(f"no example from line {line}")

    def agreement(self, k: int | None = None) -> list[Agreement]:
        """Spearman's correlation and the top-k overlap of every pair of score columns."""
        k = min(k or self.keep, len(self.examples))
        out = []
        for i, a in enumerate(self.methods):
            for b in self.methods[i + 1:]:
                ta = {e.line for e in self.top(a, k)}
                tb = {e.line for e in self.top(b, k)}
                out.append(Agreement(a, b, spearman(self.column(a), self.column(b)),
                                     len(ta & tb) / k if k else math.nan, k))
        return out

    def channels(self, method: str = "gradient") -> list[ChannelShare]:
        """Per channel: its part of the positive ``method`` score, most first."""
        col = self.column(method)
        top = {e.line for e in self.top(method)}
        pos_total = math.fsum(v for v in col if v > 0)
        groups: dict[str, list] = {}
        for e, v in zip(self.examples, col):
            groups.setdefault(e.channel, []).append((e.line, v))
        out = []
        for name, items in groups.items():
            pos = math.fsum(v for _, v in items if v > 0)
            out.append(ChannelShare(name, len(items), pos, pos / pos_total if pos_total > 0 else math.nan,
                                    math.fsum(v for _, v in items) / len(items),
                                    sum(1 for line, _ in items if line in top)))
        return sorted(out, key=lambda c: (-c.positive, c.name))

    def channel_share(self, method: str = "gradient") -> dict[str, float]:
        return {c.name: c.share for c in self.channels(method)}

    def verify(self, retrain, k: int = 10, **kwargs):
        """Retrain without the top ``k`` (and without ``controls`` random sets of ``k`` of the same
        channel mix) and rescore this case: see :func:`probe.attribution.verify.verify`."""
        return verify(self, retrain, k=k, **kwargs)

    def to_dict(self) -> dict:
        prompt = self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]
        return json_numbers({
            "title": self.title, "prompt": prompt, "expected": self.expected, "query": self.query,
            "wrong": self.wrong, "expected_token": self.expected_token, "wrong_token": self.wrong_token,
            "source": self.source, "examples": [e.to_dict() for e in self.examples],
            "methods": list(self.methods), "checkpoints": [c.to_dict() for c in self.checkpoints],
            "keep": self.keep, "projected": self.projected, "mask": self.mask, "channel": self.channel,
            "skipped": self.skipped, "models": dict(self.models)})

    @classmethod
    def from_dict(cls, d: dict) -> "Attribution":
        prompt = d["prompt"] if isinstance(d["prompt"], str) else tuple(dict(m) for m in d["prompt"])
        return cls(str(d.get("title", "")), prompt, str(d["expected"]), str(d["query"]), d.get("wrong"),
                   d.get("expected_token"), d.get("wrong_token"), str(d.get("source", "")),
                   tuple(ExampleScore.from_dict(e) for e in d["examples"]), tuple(map(str, d["methods"])),
                   tuple(Checkpoint.from_dict(c) for c in d.get("checkpoints", ())), int(d.get("keep", 10)),
                   bool(d.get("projected", False)), d.get("mask"), d.get("channel"), int(d.get("skipped", 0)),
                   {str(k): str(v) for k, v in d.get("models", {}).items()})

    def __str__(self) -> str:
        return attribution_text(self)

    def _repr_html_(self) -> str:
        return attribution_html(self)


def _key(v: float) -> float:
    return -math.inf if v != v else v


def _inputs(a: Attribution) -> dict:
    prompt = a.prompt if isinstance(a.prompt, str) else [dict(m) for m in a.prompt]
    return {"prompt": prompt, "expected": a.expected, "title": a.title or None}


register(Attribution, default_name="attribution", inputs=_inputs, section=attribution_section)
