"""One lm-eval sample line, flattened: its prompt, target, response and metrics.

The right choice of a multiple-choice sample is resolved as lm-eval 0.4 resolves it
(``ConfigurableTask.doc_to_target`` then ``process_results``), from the task's config in
``results_*.json`` and the logged ``doc``: an int is the choice's index; a string is
``choices.index(string)``, exact (choices that differ only by whitespace stay apart), and no
choice when none equals it; ``doc_to_target`` a template whose text is all digits is an index
(lm-eval's ``ast.literal_eval``). lm-eval logs the target as ``str(target)``, so without the
config (sample files given alone, or a ``doc_to_target`` function) a digit string has two
readings (an index, a choice's text); the logged ``acc`` / ``acc_norm`` (1 exactly when lm-eval's
pick is the gold) rule out what they can, and where two readings are left there is no right
choice, and ``gold_note`` says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

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
    delimiter: str = " "  # multiple choice: lm-eval's target_delimiter, before each choice's text
    gold_note: str = ""  # multiple choice: why the right choice is not known, when it is not

    @property
    def texts(self) -> tuple[str, ...]:
        """Each choice's own text (lm-eval's ``doc_to_choice``): the continuation less the delimiter."""
        d = self.delimiter
        return tuple(c[len(d):] if d and c.startswith(d) else c for c in self.choices)

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
                   str(d.get("filter", "none")), str(d.get("delimiter", " ")), str(d.get("gold_note", "")))


def kind_of(row: dict, config: dict) -> str:
    """The task's output_type: from its config, else from the line's arguments (lm-eval 0.4:
    generate_until's arg_1 is its settings; loglikelihood_rolling's request is the text alone)."""
    kind = config.get("output_type")
    if kind:
        return str(kind)
    args = [a for a in row["arguments"].values() if isinstance(a, dict)]
    if args and isinstance(args[0].get("arg_1"), dict):
        return "generate_until"
    if len(args) == 1 and "arg_1" not in args[0]:
        return "loglikelihood_rolling"
    return "multiple_choice" if len(args) > 1 else "loglikelihood"


def delimiter_of(config: dict, results: dict, choices=()) -> str:
    """The text lm-eval put before each choice: the task's ``target_delimiter`` (" " by default),
    "" under ``--apply_chat_template`` unless the task has a ``gen_prefix`` that does not end in
    whitespace (lm-eval 0.4's ``construct_requests``). Without a config, " " when every
    continuation starts with it."""
    delim = str(config.get("target_delimiter", " "))
    if results.get("chat_template"):
        prefix = config.get("gen_prefix")
        return delim if prefix and not str(prefix)[-1:].isspace() else ""
    if not config and choices and not all(c.startswith(delim) for c in choices):
        return ""
    return delim


def _is_function(spec: str) -> bool:
    """A ``doc_to_target`` lm-eval saved as a function's source (or repr), not a template."""
    s = spec.lstrip()
    return s.startswith(("def ", "@", "<function", "lambda", "functools.partial")) or "\n" in s and "return" in s


def _index(value, texts: tuple[str, ...]) -> tuple[int | None, str]:
    """lm-eval's ``process_results`` on one target: an int is an index, a string is found exactly."""
    if isinstance(value, bool) or isinstance(value, (list, tuple)) or value is None:
        return None, f"the target {value!r:.40} is not one right choice (probe diagnoses one)"
    if isinstance(value, int):
        return (value, "") if 0 <= value < len(texts) else (None, f"the target index {value} is not a choice "
                                                                  "(lm-eval counted the sample wrong)")
    if str(value) in texts:
        return texts.index(str(value)), ""
    return None, f"the target {str(value)!r:.40} is none of the choices (lm-eval counted the sample wrong)"


def resolve_gold(target, texts: tuple[str, ...], doc: dict, config: dict,
                 consistent=None) -> tuple[int | None, str]:
    """(index of the right choice, why none) as lm-eval 0.4 resolves it (module docstring).
    ``target`` is the logged target, ``texts`` the choices' own texts (no delimiter);
    ``consistent``: tests on a reading (from the logged metrics) that settle an ambiguous one."""
    spec = config.get("doc_to_target")
    if isinstance(spec, int) and not isinstance(spec, bool):
        return _index(spec, texts)
    if isinstance(spec, str) and spec in doc:
        return _index(doc[spec], texts)  # a field: its value as the dataset holds it
    target = str(target)
    field_not_logged = isinstance(spec, str) and spec.isidentifier()  # a field, but no doc to read it in
    if isinstance(spec, str) and not field_not_logged and not _is_function(spec) and not config.get("use_prompt"):
        if target.isdigit():  # a template's digits: lm-eval's ast.literal_eval, an index
            try:
                return _index(int(target), texts)
            except ValueError:
                return None, f"the target {target!r} is not a number lm-eval could read"
        if len(target) >= 2 and target[0] == "[" and target[-1] == "]":
            return None, "several right choices (lm-eval's multiple targets); probe diagnoses one"
        return _index(target, texts)
    # no config (or a function, or a field without the doc): lm-eval logged str(target), so the
    # int 2 and the string "2" read alike; a reading the logged acc / acc_norm rule out is
    # dropped, and two left are ambiguous
    as_text = texts.index(target) if target in texts else None
    readings = {as_text}
    if target.isdigit() and target.isascii():
        readings.add(int(target) if int(target) < len(texts) else None)
    readings = {g for g in readings if all(ok(g) for ok in (consistent or ()))} or readings
    if len(readings) > 1:
        a, b = sorted(readings, key=lambda g: -1 if g is None else g)[:2]
        name = lambda g: "no choice" if g is None else f"choice {g} ({texts[g]!r:.20})"  # noqa: E731
        return None, (f"the target {target!r} reads as {name(a)} or {name(b)}: lm-eval logs str(target), so "
                      "without the task's config (the run's results_*.json) the int and the string read alike")
    (gold,) = readings
    return gold, "" if gold is not None else f"the target {target!r:.40} is none of the choices"


def lmeval_pick(texts, logliks, metric: str) -> int:
    """The choice lm-eval 0.4's ``process_results`` counts as the model's pick for ``metric``:
    the argmax of the log-likelihoods (the first on a tie), each divided by its choice's text
    length in characters for ``acc_norm`` and in UTF-8 bytes for ``acc_bytes`` (the text from
    ``doc_to_choice``, without the delimiter)."""
    lls = np.asarray(logliks, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty choice: as numpy gives lm-eval
        if metric == "acc_norm":
            lls = lls / np.array([float(len(t)) for t in texts])
        elif metric == "acc_bytes":
            lls = lls / np.array([float(len(t.encode("utf-8"))) for t in texts])
    return int(np.argmax(lls))


def answer_for(sample: Sample, answer: Answer, metric: str) -> Answer:
    """``answer`` with the response lm-eval counted for ``metric`` (acc_norm's pick can differ)."""
    if sample.kind != "multiple_choice" or not answer.logliks or metric not in ("acc_norm", "acc_bytes"):
        return answer
    return replace(answer, response=sample.texts[lmeval_pick(sample.texts, answer.logliks, metric)])


def _consistent(texts, logliks, metrics: dict) -> list:
    """Tests a gold reading must pass: lm-eval's logged acc / acc_norm / acc_bytes is 1 exactly
    when its pick is the gold."""
    return [(lambda g, p=lmeval_pick(texts, logliks, m), right=metrics[m] == 1.0: (g == p) == right)
            for m in ("acc", "acc_norm", "acc_bytes") if metrics.get(m) in (0.0, 1.0)]


def parse(row: dict, task: str, config: dict, where: str, results: dict | None = None) -> tuple[Sample, Answer]:
    """(the sample's inputs, the model's answer) from one line; ``where`` names file and line;
    ``results``: the run's results file (its chat template decides the choices' delimiter)."""
    kind = kind_of(row, config)
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
        delim = delimiter_of(config, results or {}, choices)
        sample = Sample(target=str(target), choices=choices, delimiter=delim, **common)
        if kind == "multiple_choice":
            gold, why = resolve_gold(target, sample.texts, doc, config,
                                     _consistent(sample.texts, logliks, metrics))
        else:
            gold, why = 0, ""
        sample = replace(sample, target=sample.texts[gold] if gold is not None else str(target), gold=gold,
                         gold_note=why)
        pick = lmeval_pick(sample.texts, logliks, "acc")  # the metric's own pick: answer_for
        return sample, Answer(sample.texts[pick], logliks=tuple(logliks), greedy=tuple(greedy), metrics=metrics)
    sample = Sample(target=str(target), **common)
    return sample, Answer(str(row["filtered_resps"])[:200], metrics=metrics)
