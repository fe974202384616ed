"""Many cases diagnosed in shared batches: the engine behind ``diagnose`` and ``diagnose_many``.

A case becomes a :class:`CasePlan` (its inputs, validated once, before any model runs).
:func:`run_plans` then generates every run of every plan in one left-padded batch per model
(one batch in all for a LoRA pair: PEFT picks each row's adapter), reads ``expected``'s
scores where each run answers off that run's prefill (:mod:`probe.engine.prefill`), and only
then decides each case on its own. A decode step costs far less per row in a batch of 64 rows than alone
(the weights are read once per step), so a case file runs in a fraction of one-case-at-a-time.

Nothing a case gets depends on the other cases of its batch beyond float32 rounding: padding
is masked and positions come from the mask, and a sample's seed depends only on the case's
seed, the run and the sample's index (:func:`probe.diagnosis.sample_seed`).

    >>> plans = [plan_case("What is the capital of France?", expected="Paris"),
    ...          plan_case("What is the capital of Japan?", expected="Tokyo")]
    >>> [d.verdict for d in run_plans(base, tuned, plans, max_new_tokens=4)]
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from .checks import Check
from .result import Diagnosis, Run, _one_batch, check_pair_once, resolve_check, sample_seed, spec_of
from .evidence import check_sweep, first_answer_step, run_kind, run_target, score_runs, sweep_template
from ..engine.generation import RowSpec, generate_and_score
from .labels import decide, labels_of
from .passrate import PassRate
from ..engine.prompts import encode_prompt, render
from ..engine.trace import TokenTrace
from ..engine.settings import GenerationSettings
from ..overfit.sweep import sweep as run_sweep

BATCH_TOKENS = 16384  # diagnose_many: rows x (prompt + new tokens) one generation batch holds


@dataclass(frozen=True)
class CasePlan:
    """One case's inputs, validated: what :func:`run_plans` needs to diagnose it."""

    prompt: Any
    check: Check
    expected: str | None = None
    force: str | None = None
    base_prompt: str | None = None
    system: str | None = None
    case_id: str | None = None
    tags: tuple[str, ...] = ()
    slots: dict[str, list[str]] | None = None  # the sweep, checked against the prompt
    samples: int = 0
    temperature: float = 1.0
    seed: int | None = None  # drawn when sampled and not given

    @property
    def keys(self) -> list[tuple[str, str]]:
        """(model, forced prefix) of the four runs (two without ``force``)."""
        forces = [""] + ([self.force] if self.force else [])
        return [(m, f) for m in ("tuned", "base") for f in forces]

    def fan(self, model: str, force: str) -> list[int | None]:
        """The generations continuing one run's prefill: greedy (None), then the samples' seeds."""
        run = model + ("_forced" if force else "")
        return [None] + [sample_seed(self.seed, run, i) for i in range(self.samples)]

    def target(self, model: str, force: str) -> tuple[str, int] | None:
        """What run (model, force) scores ``expected`` as, after the text it continues: (the
        scored text, chars before the answer in it); None without ``expected``."""
        if not self.expected:
            return None
        _, text, before = run_target(run_kind(model, force, self.base_prompt), force, self.base_prompt,
                                     self.expected)
        return text, before

    def spec(self, model: str, force: str, adapter: str | None) -> RowSpec:
        """The generation row of run (model, force): the continuation test reads ``base_prompt``
        raw; every other run gets the prompt in its format (the same input for both models)."""
        if run_kind(model, force, self.base_prompt) == "continuation":
            return RowSpec(prompt=self.base_prompt, raw=True, adapter=adapter)
        return RowSpec(prompt=self.prompt, force=force, system=self.system, adapter=adapter)


def check_samples(samples, temperature, seed) -> int:
    if samples is None:
        return 0
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
        raise ValueError(f"samples must be a non-negative int, got {samples!r}")
    GenerationSettings(temperature=temperature, seed=seed)  # the same checks as generate's
    return samples


def plan_case(prompt, *, check=None, expected: str | None = None, force: str | None = None,
              base_prompt: str | None = None, system: str | None = None, case_id: str | None = None,
              tags=(), samples: int | None = None, temperature: float = 1.0, seed: int | None = None,
              sweep: dict | None = None) -> CasePlan:
    """Validate one case's inputs (see :func:`probe.diagnose`); raise before any model runs."""
    the_check = resolve_check(check, expected)
    samples = check_samples(samples, temperature, seed)
    slots = check_sweep(sweep)
    if slots is not None:
        sweep_template(prompt, slots)  # fail on a bad sweep before any model runs
    if samples and seed is None:
        seed = secrets.randbits(31)
    return CasePlan(prompt=prompt, check=the_check, expected=expected, force=force,
                    base_prompt=base_prompt, system=system, case_id=case_id, tags=tuple(tags),
                    slots=slots, samples=samples, temperature=temperature, seed=seed)


def _generate(lm_of, plans, rows, shared, settings):
    """Greedy (then sampled) traces of every row ``(plan index, model, force)``, in that order,
    and each row's evidence: ``(expected scored where the run answers, its first answer step)``
    (None without ``expected``), read off the row's prefill where it can be.
    ``shared``: (lm, {model: its PEFT row adapter}) when all rows share one batch."""
    sampled = any(plans[i].samples for i, _, _ in rows)
    fans = [plans[i].fan(m, f) for i, m, f in rows] if sampled else None
    flat: list[list[TokenTrace]] = [[] for _ in rows]
    evidence: list = [None] * len(rows)
    if shared is not None:
        groups = [(shared[0], list(range(len(rows))), shared[1])]
    else:
        groups = [(lm_of[model], [j for j, r in enumerate(rows) if r[1] == model], {model: None})
                  for model in dict.fromkeys(r[1] for r in rows)]
    targets = [plans[i].target(m, f) for i, m, f in rows]  # (text to score, chars before the answer)
    for lm, index, adapters in groups:
        specs = [replace(plans[rows[j][0]].spec(rows[j][1], rows[j][2], adapters[rows[j][1]]),
                         score=None if targets[j] is None else targets[j][0]) for j in index]
        traces, scored = generate_and_score(lm, specs, settings=settings, batch_size=len(specs),
                                            fan_out=None if fans is None else [fans[j] for j in index])
        traces = iter(traces)
        for j, trace in zip(index, scored):
            flat[j] = [next(traces) for _ in range(1 if fans is None else len(fans[j]))]
            if trace is not None:
                evidence[j] = (trace, first_answer_step(trace, targets[j][1]))
    return flat, evidence


def _runs(keys, got, the_check, evidence) -> list[Run]:
    runs = []
    for (model, f), traces in zip(keys, got):
        greedy, sampled = traces[0], traces[1:]
        result = the_check(greedy.text)
        checked = [the_check(t.text).passed for t in sampled]
        exp_trace, exp_from = evidence.get((model, f), (None, 0))
        runs.append(Run(model + ("_forced" if f else ""), model, f, greedy, result.passed, result.reason,
                        rate=PassRate(sum(checked), len(checked)) if sampled else None,
                        sample_texts=tuple(t.text for t in sampled), sample_passed=tuple(checked),
                        expected_trace=exp_trace, expected_from=exp_from))
    return runs


def _evidence(lm_of, plans, rows, scored, top_k) -> dict[int, tuple[dict, dict]]:
    """Per plan with ``expected``: ({run key: its evidence}, {model: expected right after the
    prompt}). The free runs' evidence is that second number; a model none of whose runs
    answers right after the prompt (the base, given ``base_prompt``) scores it apart."""
    out: dict[int, tuple[dict, dict]] = {}
    models: dict[int, dict] = {}  # plan -> its models, in order
    for (i, m, f), ev in zip(rows, scored):
        if ev is None:
            continue
        runs, after = out.setdefault(i, ({}, {}))
        runs[(m, f)] = ev
        models.setdefault(i, {})[m] = None
        if run_kind(m, f, plans[i].base_prompt) == "free":
            after[m] = ev[0]
    missing = [(i, m) for i, (_, after) in out.items() for m in models[i] if m != "reference" and m not in after]
    for model in dict.fromkeys(m for _, m in missing):
        index = [i for i, m in missing if m == model]
        items = [(plans[i].prompt, plans[i].expected, None, plans[i].system) for i in index]
        for i, trace in zip(index, score_runs(lm_of[model], items, top_k=top_k)):
            out[i][1][model] = trace
    return out


def _by_row(rows, got) -> dict[int, list]:
    out: dict[int, list] = {}
    for (i, _, _), traces in zip(rows, got):
        out.setdefault(i, []).append(traces)
    return out


def run_plans(base, tuned, plans: list[CasePlan], *, max_new_tokens: int = 48, top_k: int = 5,
              reference=None) -> list[Diagnosis | Exception]:
    """Diagnose ``plans`` in shared batches; one Diagnosis per plan, or the exception that
    plan raised (a check that raises, a prompt the model cannot take).

    A failure of the shared batch itself is pinned on its case by running each plan alone.
    """
    if not plans:
        return []
    if len({p.temperature for p in plans}) > 1:  # one settings object per batch
        out: list = [None] * len(plans)
        for t in dict.fromkeys(p.temperature for p in plans):
            index = [i for i, p in enumerate(plans) if p.temperature == t]
            for i, r in zip(index, run_plans(base, tuned, [plans[i] for i in index],
                                             max_new_tokens=max_new_tokens, top_k=top_k,
                                             reference=reference)):
                out[i] = r
        return out
    settings = GenerationSettings(max_new_tokens=max_new_tokens, top_k=top_k,
                                  temperature=plans[0].temperature)
    lm_of = {"tuned": tuned, "base": base, "reference": reference}
    try:
        check_pair_once(base, tuned)
        one = _one_batch(base, tuned)
        shared = None if one is None else (one[0], {"tuned": one[1][0], "base": one[1][1]})
        rows = [(i, m, f) for i, p in enumerate(plans) for m, f in p.keys]
        flat, scored = _generate(lm_of, plans, rows, shared, settings)
        got = _by_row(rows, flat)
        evidence = _evidence(lm_of, plans, rows, scored, top_k)
    except Exception as err:  # noqa: BLE001 - pinned on its case below, or returned
        if len(plans) == 1:
            return [err]
        return [run_plans(base, tuned, [p], max_new_tokens=max_new_tokens, top_k=top_k,
                          reference=reference)[0] for p in plans]
    runs_of: dict[int, list[Run]] = {}
    out = [None] * len(plans)
    for i, p in enumerate(plans):
        try:
            runs_of[i] = _runs(p.keys, got[i], p.check, evidence.get(i, ({}, {}))[0])
        except Exception as err:  # noqa: BLE001 - that case's error
            out[i] = err
    decided = {i: decide({r.name: r for r in runs}) for i, runs in runs_of.items()}
    if reference is not None:  # where all four runs fail (leaning never_had): one batch for all
        never = [i for i in runs_of if decided[i][1] == "never_had" and out[i] is None]
        _reference_runs(lm_of, plans, never, runs_of, settings, top_k, out)
    for i, runs in runs_of.items():
        if out[i] is None:
            try:
                out[i] = _diagnosis(plans[i], base, tuned, reference, runs, decided[i],
                                    evidence.get(i, ({}, {}))[1], top_k)
            except Exception as err:  # noqa: BLE001 - that case's error
                out[i] = err
    return out


def _reference_runs(lm_of, plans, index, runs_of, settings, top_k, out) -> None:
    """Run the reference model on the base's input for plans ``index`` and add its run (a batch
    that fails is pinned on its case by running each plan alone)."""
    if not index:
        return
    key = [("reference", "")]
    try:
        rows = [(i, "reference", "") for i in index]
        flat, scored = _generate(lm_of, plans, rows, None, settings)
        got = _by_row(rows, flat)
        evidence = _evidence(lm_of, plans, rows, scored, top_k)
    except Exception as err:  # noqa: BLE001 - pinned on its case: each alone
        if len(index) == 1:
            out[index[0]] = err
        else:
            for i in index:
                _reference_runs(lm_of, plans, [i], runs_of, settings, top_k, out)
        return
    for i in index:
        try:
            runs_of[i] = runs_of[i] + _runs(key, got[i], plans[i].check, evidence.get(i, ({}, {}))[0])
        except Exception as err:  # noqa: BLE001 - that case's error
            out[i] = err


def _diagnosis(p: CasePlan, base, tuned, reference, runs, decided, expected_traces, top_k) -> Diagnosis:
    verdict, leaning = decided
    d = Diagnosis(
        verdict=verdict, leaning=leaning,
        prompt=p.prompt, base_prompt=p.base_prompt, expected=p.expected, force=p.force,
        check=p.check.name, check_spec=spec_of(p.check), runs=tuple(runs), expected_traces=expected_traces,
        case_id=p.case_id, tags=p.tags,
        models={"base": base.name, "tuned": tuned.name}
        | ({"reference": reference.name} if reference is not None else {}),
        adapter=tuned.active_adapter, samples=p.samples,
        temperature=p.temperature if p.samples else None, seed=p.seed if p.samples else None,
    )
    if p.slots is not None and leaning != "ok" and p.expected:
        div = d.divergence("tuned")
        if div.diverged:
            wrong = div.reference[: div.step.start] + div.preferred.text
            template, others = sweep_template(p.prompt, p.slots)
            d = replace(d, sweep=run_sweep(tuned, template, wrong, top_k=max(1, top_k), system=p.system,
                                            **others))
    return replace(d, labels=labels_of(d))


def plan_size(lm, p: CasePlan, max_new_tokens: int) -> tuple[int, int]:
    """(rows, tokens per row) a plan adds to a generation batch: its runs x (1 + samples), and
    its longest input plus the new tokens."""
    rows = len(p.keys) * (1 + p.samples)
    try:
        longest = max(len(encode_prompt(lm, render(lm, p.prompt, system=p.system))),
                      0 if p.base_prompt is None else len(encode_prompt(lm, render(lm, p.base_prompt, raw=True))))
        longest += 0 if not p.force else len(lm.tokenizer(p.force, add_special_tokens=False)["input_ids"])
    except Exception:  # noqa: BLE001 - a prompt that fails here fails in run_plans, alone
        return rows, BATCH_TOKENS * 1024
    return rows, longest + max_new_tokens


def token_batches(sizes: list[tuple[int, int]], budget: int) -> list[list[int]]:
    """Indices of ``sizes`` ((rows, tokens per row) each) grouped so that every group's rows x
    its longest row (what its padded batch holds) stays within ``budget``; a plan over it goes
    alone. Shortest first, so that similar lengths share a batch and padding wastes little."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i][1])
    groups: list[list[int]] = []
    rows = 0
    for i in order:
        n, length = sizes[i]
        if groups and (rows + n) * length <= budget:  # ``length`` is the group's longest so far
            groups[-1].append(i)
            rows += n
        else:
            groups.append([i])
            rows = n
    return groups
