"""Command line: ``probe demo``.

Built on argparse; ``probe --help`` and ``probe COMMAND --help`` document every option.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("PROBE_CACHE", Path.home() / ".cache" / "probe"))


def _tiny_demo_model():
    """A tiny random chat model, built once into the cache (seconds)."""
    import probe
    from probe.tiny import save_tiny

    folder = cache_dir() / "tiny-demo"
    if not (folder / "config.json").is_file():
        save_tiny(folder, arch="llama", tokenizer="bpe", chat=True, seed=0)
    return probe.load(folder, name="tiny random llama (demo stand-in)")


def _write_report(path: Path, sections: list[tuple[str, str]]) -> None:
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>probe demo</title></head>"
        f"<body style='font-family:sans-serif;max-width:60em;margin:auto'><h1>probe demo</h1>{body}"
        "</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)


def cmd_demo(args) -> int:
    import probe

    print("probe demo: score, generate and first divergence on a TINY RANDOM model built on")
    print("the spot (the real base/tuned pair arrives with the diagnose work). The numbers are")
    print("real computations on that model; the words it writes are noise.\n")
    lm = _tiny_demo_model()
    question = "What is the capital of France?"
    scored = probe.score(lm, question, "Paris.")
    generated = probe.generate(lm, question, max_new_tokens=12, force="```json\n", watch=["{", " Paris"])
    divergence = probe.first_divergence(lm, question, reference="The capital of France is Paris.")
    for title, result in (("score", scored), ("generate (forced '```json\\n')", generated),
                          ("first divergence", divergence)):
        print(f"== {title}\n{result}\n")
    out = Path(args.out)
    _write_report(out, [("score", scored._repr_html_()),
                        ("generate, forced prefix", generated._repr_html_()),
                        ("first divergence", divergence._repr_html_())])
    print(f"report: {out.resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="probe",
        description="Why does a fine-tuned LM get this case wrong? Per-token probabilities, "
        "forced prefixes and base-vs-tuned diagnosis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the main job on the embedded default model")
    demo.add_argument("--out", default="probe-demo.html", help="where to write the HTML report")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
