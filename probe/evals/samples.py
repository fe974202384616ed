"""One lm-eval sample line, flattened: its prompt, target, response and metrics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .logs import EvalLogError

CHOICE_TYPES = ("multiple_choice", "loglikelihood")


def _float(value, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EvalLogError(f"{where}: expected a number, got {value!r:.60}") from None


def _loglik(value, where: str) -> float:
    """A logged log-likelihood: a finite number or -inf (a choice with a token of probability 0)."""
    x = _float(value, where)
    if math.isnan(x) or x == math.inf:
        raise EvalLogError(f"{where}: a log-likelihood of {x} (the model's logits were NaN or broken "
                           "when lm-eval ran)")
    return x


def loglik_in(value) -> float:
    """A saved log-likelihood: null is -inf (case files are strict JSON)."""
    return -math.inf if value is None else float(value)


@dataclass(frozen=True)
class Answer:
    """What one model did on one sample."""

    response: str  # generate_until: the filtered answer; multiple choice: the picked choice
    raw: str = ""  # generate_until: the unfiltered generation
    logliks: tuple[float, ...] = ()  # multiple choice: log P(choice | context), per choice
    greedy: tuple[bool, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Answer":
        return cls(str(d["response"]), str(d.get("raw", "")), tuple(map(loglik_in, d.get("logliks", ()))),
                   tuple(bool(x) for x in d.get("greedy", ())), {str(k): float("nan") if v is None else float(v) for k, v in d.get("metrics", {}).items()})


@dataclass(frozen=True)
class Sample:
    """The inputs of one sample (the same in both runs when they match)."""

    task: str
    doc_id: int
    kind: str  # the task's output_type: multiple_choice, loglikelihood, generate_until, ...
    prompt: str  # the context the model saw (arg_0)
    target: str  # the right answer as text (a choice's text for multiple choice)
    choices: tuple[str, ...] = ()  # multiple choice: each continuation, as scored
    gold: int | None = None  # multiple choice: index of the right choice
    until: tuple[str, ...] = ()  # generate_until: stop strings
    max_gen_toks: int | None = None
    doc: dict = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    filter: str = "none"  # the lm-eval filter this row's metric was computed after

    @property
    def id(self) -> str:
        return f"{self.task}/{self.doc_id}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(str(d["task"]), int(d["doc_id"]), str(d["kind"]), str(d["prompt"]), str(d["target"]),
                   tuple(str(c) for c in d.get("choices", ())), d.get("gold"), tuple(d.get("until", ())),
                   d.get("max_gen_toks"), dict(d.get("doc", {})), dict(d.get("hashes", {})),
                   str(d.get("filter", "none")))


def _kind(row: dict, config: dict) -> str:
    kind = config.get("output_type")
    if kind:
        return str(kind)
    args = [a for a in row["arguments"].values() if isinstance(a, dict)]
    if args and isinstance(args[0].get("arg_1"), dict):
        return "generate_until"
    return "multiple_choice" if len(args) > 1 else "loglikelihood"


def _gold(target: str, choices: tuple[str, ...]) -> int | None:
    try:
        i = int(target)
    except ValueError:
        stripped = [c.strip() for c in choices]
        return stripped.index(target.strip()) if target.strip() in stripped else None
    return i if 0 <= i < len(choices) else None


def parse(row: dict, task: str, config: dict, where: str) -> tuple[Sample, Answer]:
    """(the sample's inputs, the model's answer) from one line; ``where`` names file and line."""
    kind = _kind(row, config)
    args = [row["arguments"][k] for k in sorted(row["arguments"], key=lambda k: int(k.rpartition("_")[2]))]
    if not args or not all(isinstance(a, dict) and "arg_0" in a for a in args):
        raise EvalLogError(f"{where}: field 'arguments' has no gen_args_i with arg_0 (probe reads lm-eval 0.4 logs)")
    prompt = str(args[0]["arg_0"])
    metrics = {}
    for name in row["metrics"]:
        if name in row:
            value = row[name]
            metrics[str(name)] = float(value) if isinstance(value, (int, float)) else float("nan")
    hashes = {k: str(row[k]) for k in ("doc_hash", "prompt_hash", "target_hash") if k in row}
    doc = row.get("doc") if isinstance(row.get("doc"), dict) else {}
    target = row["target"]
    target = target[0] if isinstance(target, list) and target else target
    common = dict(task=task, doc_id=int(row["doc_id"]), kind=kind, prompt=prompt, doc=doc, hashes=hashes,
                  filter=str(row.get("filter", "none")))
    if kind == "generate_until":
        settings = args[0].get("arg_1") if isinstance(args[0].get("arg_1"), dict) else {}
        until = settings.get("until") or ()
        until = (until,) if isinstance(until, str) else tuple(str(u) for u in until)
        filtered = row["filtered_resps"]
        response = filtered[0] if isinstance(filtered, list) and filtered else filtered
        raw = row["resps"][0][0] if row["resps"] and isinstance(row["resps"][0], list) and row["resps"][0] else ""
        sample = Sample(target=str(target), until=until, max_gen_toks=settings.get("max_gen_toks"), **common)
        return sample, Answer(str(response), str(raw), metrics=metrics)
    if kind in CHOICE_TYPES:
        choices = tuple(str(a.get("arg_1", "")) for a in args)
        pairs = row["filtered_resps"]
        if not isinstance(pairs, list) or len(pairs) != len(choices):
            raise EvalLogError(f"{where}: field 'filtered_resps' has {len(pairs) if isinstance(pairs, list) else 'no'} "
                               f"entries for {len(choices)} choices")
        logliks, greedy = [], []
        for i, pair in enumerate(pairs):
            pair = pair[0] if isinstance(pair, list) and pair and isinstance(pair[0], list) else pair
            if not isinstance(pair, list) or len(pair) != 2:
                raise EvalLogError(f"{where}: field 'filtered_resps' entry {i} is not [loglik, is_greedy]")
            logliks.append(_loglik(pair[0], f"{where}: field 'filtered_resps' entry {i}"))
            greedy.append(pair[1] is True or str(pair[1]) == "True")
        gold = _gold(str(target), choices) if kind == "multiple_choice" else 0
        right = choices[gold].strip() if gold is not None else str(target)
        sample = Sample(target=right, choices=choices, gold=gold, **common)
        pick = max(range(len(logliks)), key=logliks.__getitem__)
        return sample, Answer(choices[pick].strip(), logliks=tuple(logliks), greedy=tuple(greedy), metrics=metrics)
    sample = Sample(target=str(target), **common)
    return sample, Answer(str(row["filtered_resps"])[:200], metrics=metrics)
