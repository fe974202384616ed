"""The demo steps' results as lines of text (the step commands print them)."""

from __future__ import annotations

from pathlib import Path


def data_lines(paths: dict[str, Path]) -> list[str]:
    """One line per dataset written: its adapter, path and example count."""
    out = []
    for name, path in paths.items():
        with open(path, encoding="utf-8") as f:
            out.append(f"{name}: {path} ({sum(1 for _ in f)} examples)")
    return out


def answer_lines(rows: list[dict], indent: str = "") -> list[str]:
    """``compare``'s rows as text: the question, then the base and the tuned answer."""
    pad = indent + "   "
    return [f"{indent}Q: {r['question']}\n{pad}base:  {r['base']!r}\n{pad}tuned: {r['tuned']!r}"
            for r in rows]


def evaluation_lines(results: dict) -> list[str]:
    """The evaluation of each adapter as text (``main_evaluate``'s results)."""
    out = []
    for name, res in results.items():
        out.append(f"== {name}")
        out += answer_lines(res["answers"])
        out += [f"forced {r['prefix']!r} valid={r['valid_json']} strict={r['valid_json_strict']}: "
                f"{r['question']} -> {r['answer']!r}" for r in res.get("forced_json", [])]
        out.append(f"base raw 'The capital of France is' -> {res['base_raw']!r}")
    return out


def training_line(name: str, out: Path, log: dict) -> str:
    """One adapter's training summary: where, size, time, loss first -> last 5."""
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    last = log["losses"][-5:]
    run = (f" ({log['steps']} steps, {len(log.get('checkpoints', ()))} checkpoints)"
           if "steps" in log else "")
    return (f"{name}: {out} ({size:.1f} MB) trained in {log['seconds']['train']:.0f} s{run} "
            f"(total {log['seconds']['total']:.0f} s); loss {log['losses'][0]:.3f} -> "
            f"{sum(last) / len(last):.3f} (mean of last {len(last)})")
