"""Why a benchmark sample flipped, from what its log holds.

Multiple choice: every choice is re-scored with probe under both models, the way lm-eval
scores it (context and continuation tokenized together and split after the context's own
tokens, a trailing space of the context moved to the continuation, the tokenizer's own BOS),
and compared with the logged log-likelihoods: a difference above ``tolerance`` means another
prompt, template or model was evaluated than the one given, and is reported. Then, token by
token along the right choice under the model that got it wrong: the first token where the
right choice's running log-probability falls below the total of the choice that model picked
(the one lm-eval counted for the metric: :func:`picked`; ``acc_norm`` divides by the choice
text's length, as lm-eval does).

Generations: :func:`probe.diagnose_many` on the sample (expected = the target after the task's
``target_delimiter``, " " by default, for the teacher-forced scores; the check = the task's own:
its stop strings, filters and exact-match options where probe can express them).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace

from ..core.numbers import json_numbers
from ..core.registry import register
from ..diagnosis.checks import Check, contains
from ..diagnosis.result import Diagnosis
from ..diagnosis.run import CaseSpec, diagnose_many
from ..engine.prompts import Rendered, encode
from ..engine.scoring import score_many
from ..render.evals import choice_scores_html, choice_scores_text
from .samples import CHOICE_TYPES, lmeval_pick

TOLERANCE = 1e-3  # nats, on a choice's summed log-probability (float32 sums of a few tokens)


@dataclass(frozen=True)
class GoldToken:
    """One token of the right choice: its log-probability under each model."""

    text: str
    base_logprob: float
    tuned_logprob: float

    @property
    def drop(self) -> float:
        return self.tuned_logprob - self.base_logprob


@dataclass(frozen=True)
class ChoiceScores:
    """Each choice's log-probability under both models, logged and re-scored, and where the right
    choice falls behind."""

    choices: tuple[str, ...]
    gold: int
    logged: dict[str, tuple[float, ...]]  # "base"/"tuned" -> lm-eval's log-likelihoods
    rescored: dict[str, tuple[float, ...]]  # the same, re-scored with probe
    max_diff: float  # max |logged - rescored| over both models and every choice
    tolerance: float
    loser: str  # the model that got it wrong: "tuned" (lost) or "base" (gained)
    rival: int  # the choice the loser picked
    gold_tokens: tuple[GoldToken, ...]
    behind_at: int | None  # index into gold_tokens: where the right choice falls behind the rival
    note: str = ""

    @property
    def mismatch(self) -> bool:
        return self.max_diff > self.tolerance

    @property
    def biggest_drop(self) -> int | None:
        """The gold token the tuned model lost most log-probability on (vs the base)."""
        if not self.gold_tokens:
            return None
        return min(range(len(self.gold_tokens)), key=lambda i: self.gold_tokens[i].drop)

    def to_dict(self) -> dict:
        """Plain data, strict JSON: a -inf log-probability is saved as "-inf" (core.numbers)."""
        return json_numbers({"choices": list(self.choices), "gold": self.gold,
                "logged": {k: list(v) for k, v in self.logged.items()},
                "rescored": {k: list(v) for k, v in self.rescored.items()}, "max_diff": self.max_diff,
                "tolerance": self.tolerance, "loser": self.loser, "rival": self.rival,
                "gold_tokens": [[t.text, t.base_logprob, t.tuned_logprob] for t in self.gold_tokens],
                "behind_at": self.behind_at, "note": self.note})

    @classmethod
    def from_dict(cls, d: dict) -> "ChoiceScores":
        floats = lambda v: tuple(map(float, v))  # noqa: E731 - "-inf" too
        return cls(tuple(d["choices"]), int(d["gold"]), {k: floats(v) for k, v in d["logged"].items()},
                   {k: floats(v) for k, v in d["rescored"].items()}, float(d["max_diff"]), float(d["tolerance"]),
                   str(d["loser"]), int(d["rival"]),
                   tuple(GoldToken(t[0], float(t[1]), float(t[2])) for t in d["gold_tokens"]),
                   d.get("behind_at"), str(d.get("note", "")))

    def __str__(self) -> str:
        return choice_scores_text(self)

    def _repr_html_(self) -> str:
        return choice_scores_html(self)


register(ChoiceScores, default_name="choice_scores")


def raw_view(lm):
    """The same model, reading prompts as raw text (lm-eval's context is the full text already)."""
    return replace(lm, chat=False) if lm.chat else lm


def lmeval_pair(lm, context: str, continuation: str) -> tuple[str, str, str]:
    """(context, continuation) as probe scores them to match lm-eval, and a note if probe's token
    split differs from lm-eval's (which splits after ``len(tokenize(context))`` tokens)."""
    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    tok = lm.tokenizer
    bos = tok.bos_token
    if bos and context.startswith(bos) and tok("", add_special_tokens=True)["input_ids"][:1] == [tok.bos_token_id]:
        context = context[len(bos):]  # lm-eval adds no second BOS to a text that starts with one
    note = ""
    if context:
        whole = tok(context + continuation)["input_ids"]
        theirs = whole[len(tok(context)["input_ids"]):]
        ours = encode(lm, Rendered(context, False), continuation).answer_ids
        if ours != theirs:
            note = (f"choice {continuation!r}: probe scores {len(ours)} token(s), lm-eval {len(theirs)} "
                    "(the tokenizer merges it with the context's end)")
    return context, continuation, note


def picked(texts, logliks, metric: str, gold: int | None = None) -> int:
    """The choice lm-eval counted as the model's pick for ``metric``
    (:func:`probe.evals.samples.lmeval_pick`); where that is ``gold`` (a model right by this
    metric), the best of the other choices by the same rule."""
    pick = lmeval_pick(texts, logliks, metric)
    if pick != gold or len(logliks) < 2:
        return pick
    others = [i for i in range(len(logliks)) if i != gold]
    return others[lmeval_pick([texts[i] for i in others], [logliks[i] for i in others], metric)]


def _behind(gold: list[float], rival_total: float) -> int | None:
    run = 0.0
    for i, lp in enumerate(gold):
        run += lp
        if run < rival_total:
            return i
    return None


def _choice_scores(flip, traces: dict, tolerance: float, notes: list[str]) -> ChoiceScores:
    s = flip.sample
    rescored = {role: tuple(sum(st.logprob for st in t.steps) for t in traces[role]) for role in traces}
    logged = {"base": flip.base.logliks, "tuned": flip.tuned.logliks}
    # a choice both sides put at -inf (a token of probability 0) agrees: 0, not inf - inf = NaN
    max_diff = max(0.0 if a == b else abs(a - b) for role in logged for a, b in zip(logged[role], rescored[role]))
    loser = "tuned" if flip.outcome in ("lost", "never") else "base"
    rival = picked(s.texts, logged[loser], flip.metric, s.gold)
    gold_b, gold_t = traces["base"][s.gold], traces["tuned"][s.gold]
    tokens = tuple(GoldToken(a.text, a.logprob, b.logprob) for a, b in zip(gold_b.steps, gold_t.steps))
    gold_lp = [t.tuned_logprob if loser == "tuned" else t.base_logprob for t in tokens]
    behind = _behind(gold_lp, rescored[loser][rival])
    return ChoiceScores(s.choices, s.gold, logged, rescored, max_diff, tolerance, loser, rival, tokens,
                        behind, "; ".join(notes))


def _exact_match_check(sample, config: dict, metric: str, filter_name: str) -> tuple[Check, str]:
    """The task's own check on a raw generation, or (contains(target), why not) when it cannot be
    expressed."""
    opts = next((m for m in config.get("metric_list", []) if m.get("metric") == metric), {})
    steps = []
    for f in config.get("filter_list", []) or []:
        if f.get("name") == filter_name:
            steps = f.get("filter", [])
    known = {"regex", "take_first", "lowercase", "uppercase", "remove_whitespace"}
    odd = [s.get("function") for s in steps if s.get("function") not in known]
    if metric != "exact_match" or odd:
        why = f"metric {metric!r}" if metric != "exact_match" else f"filter {odd[0]!r}"
        return contains(sample.target), f"{why} cannot be expressed as a probe check: contains(target) used"

    def norm(text: str) -> str:
        for rx in opts.get("regexes_to_ignore") or ():
            text = re.sub(rx, "", text)
        if opts.get("ignore_case"):
            text = text.lower()
        if opts.get("ignore_punctuation"):
            text = text.translate(str.maketrans("", "", string.punctuation))
        if opts.get("ignore_numbers"):
            text = text.translate(str.maketrans("", "", string.digits))
        return text

    def run(text: str):
        for u in sample.until:
            if u and u in text:
                text = text[: text.index(u)]
        for step in steps:
            fn = step.get("function")
            if fn == "regex":
                pattern = step.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")
                found = re.findall(pattern, text)
                if found:
                    m = found[int(step.get("group_select", 0))]
                    if isinstance(m, tuple):
                        m = next((x for x in m if x), step.get("fallback", "[invalid]"))
                    text = m.strip()
                else:
                    text = step.get("fallback", "[invalid]")
            elif fn == "lowercase":
                text = text.lower()
            elif fn == "uppercase":
                text = text.upper()
            elif fn == "remove_whitespace":
                text = text.lstrip()
        ok = norm(text) == norm(sample.target)
        return ok, f"exact_match {'=' if ok else '!='} {sample.target!r} on {text!r:.40}"

    return Check(f"lm-eval exact_match({sample.target!r})", run), ""


def diagnose_flips(flips, base, tuned, *, outcomes=("lost", "gained"), ids=None, tolerance: float = TOLERANCE,
                   max_new_tokens: int | None = None, progress: bool = False, configs: dict | None = None):
    """``flips`` with a diagnosis on each sample whose outcome is in ``outcomes`` (and whose id
    is in ``ids``, when given: ``"task/doc_id"``).

    ``configs``: task -> the task config from the results file (for the generation check);
    default: the one each flip set was read with (``EvalFlips.configs``)."""
    base, tuned = raw_view(base), raw_view(tuned)
    if ids is not None:
        ids = {ids} if isinstance(ids, str) else set(ids)
        unknown = sorted(ids - {f.id for f in flips.samples})
        if unknown:
            raise KeyError(f"no sample {unknown[0]!r} in these flips")
    chosen = [f for f in flips.samples if f.outcome in outcomes and (ids is None or f.id in ids)]
    found: dict = {}
    choice = [f for f in chosen if f.sample.kind in CHOICE_TYPES and f.sample.gold is not None]
    pairs, notes_of = [], {}
    for f in choice:
        notes_of[f.id] = []
        for c in f.sample.choices:
            ctx, cont, note = lmeval_pair(base, f.sample.prompt, c)
            pairs.append((ctx, cont))
            if note:
                notes_of[f.id].append(note)
    if pairs:
        got = {role: score_many(lm, pairs, raw=True, top_k=0, progress=progress)
               for role, lm in (("base", base), ("tuned", tuned))}
        i = 0
        for f in choice:
            n = len(f.sample.choices)
            traces = {role: got[role][i: i + n] for role in got}
            i += n
            found[f.id] = (_choice_scores(f, traces, tolerance, notes_of[f.id]), "")
    configs = configs if configs is not None else getattr(flips, "configs", {}) or {}
    gen = [f for f in chosen if f.sample.kind == "generate_until"]
    specs, why = [], {}
    for f in gen:
        config = configs.get(f.task) or configs.get(f.task.removesuffix(f":{f.sample.filter}"), {})
        check, why[f.id] = _exact_match_check(f.sample, config, f.metric, f.sample.filter)
        delim = str(config.get("target_delimiter", " "))
        expected = f.sample.target if f.sample.prompt[-1:].isspace() else delim + f.sample.target
        specs.append(CaseSpec(id=f.id, prompt=f.sample.prompt, expected=expected, check=check,
                              base_prompt=f.sample.prompt, tags=(f.task,)))
    if specs:
        n_new = max_new_tokens or max((f.sample.max_gen_toks or 32) for f in gen)
        for f, d in zip(gen, diagnose_many(base, tuned, specs, progress=progress, max_new_tokens=n_new)):
            found[f.id] = (d, why[f.id]) if isinstance(d, Diagnosis) else (None, f"not diagnosed: {d}")
    for f in chosen:
        if f.id not in found:
            found[f.id] = (None, f"no diagnosis for {f.sample.kind} samples" if f.sample.gold is not None
                           or f.sample.kind not in CHOICE_TYPES else
                           "the right choice is not known" + (f": {f.sample.gold_note}" if f.sample.gold_note else ""))
    mismatched = [f"{k}: re-scored log-likelihoods differ from the log by {v[0].max_diff:.3g} (> {tolerance:g}): "
                  "another prompt, template or model was evaluated" for k, v in found.items()
                  if isinstance(v[0], ChoiceScores) and v[0].mismatch]
    samples = tuple(replace(s, diagnosis=found[s.id][0], note=found[s.id][1]) if s.id in found else s
                    for s in flips.samples)
    return replace(flips, samples=samples, notes=flips.notes + tuple(mismatched))

