"""``python -m bench``: probe against the limits and the peers; writes bench/results.md.

    python -m bench --write bench/results.md        # what `make bench` runs: about 15 min on 2 cores
    python -m bench --full --write bench/results.md # the old run: fixed repeats, every peer variant
    python -m bench --no-peers                      # probe vs the limits only
    python -m bench --size tiny --repeats 1         # seconds: what the test suite runs

Each tool runs in its own processes (probe and the plain transformers recipes in this
environment, minicons and inseq in their virtual environments under bench/.venvs/, made by
`make bench-venvs`), on the same model folder, the same strings and the same batches, and
each process also times the limit, so every ratio is measured within one process. Time and
memory come from separate processes: time with the default malloc, memory from a process
started with ``MALLOC_MMAP_THRESHOLD_`` (see bench/common.py).

The default run repeats a measurement only while the ratio to the limit still moves (by more
than ``--spread``, at most ``--repeats`` rounds, within ``--budget`` seconds per workload and
process), runs each peer on the workloads and variants it can do, measures memory on W5 and W6
only (and W9, a memory workload never timed) and runs W4 on 250 prompts; ``--full`` runs 3 rounds of everything, every peer variant,
memory on every workload and W4 on 1,000 prompts, as the old ``make bench`` did (about an hour).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common, table
from bench.workloads import build_jobs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9")
MEMORY_WORKLOADS = ("W5", "W6")  # the default run's memory runs; --full measures every workload
MEMORY_ONLY = ("W9",)  # measured in the memory run only, never timed (their rows come from it)

# tool -> (module, venv name or None for this environment, workloads it can do, of which the
# default run takes): inseq's W2 fails batched and takes 17x the limit one prompt at a time.
RUNNERS = {
    "probe": ("bench.core", None, WORKLOADS, WORKLOADS),
    "plain": ("bench.peers.plain", None, ("W1", "W2", "W5"), ("W1", "W2", "W5")),
    "minicons": ("bench.peers.minicons", "minicons", ("W1", "W5"), ("W1", "W5")),
    "inseq": ("bench.peers.inseq", "inseq", ("W1", "W2"), ("W1",)),
}
PEERS = ("plain", "minicons", "inseq")
DEFAULTS = dict(repeats=3, budget=60.0, spread=0.03)  # the default run (<= 15 min on 2 idle cores)
FULL = dict(repeats=3, budget=300.0, spread=0.0)  # --full: what the old run did


def peer_python(venv: str) -> tuple[str | None, str | None]:
    """(python, None) for an installed peer venv, else (None, why not)."""
    folder = VENVS / venv
    if (folder / ".installed").is_file() and (folder / "bin" / "python").is_file():
        return str(folder / "bin" / "python"), None
    log = VENVS / f"{venv}.log"
    if log.is_file():
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()
                and not ln.startswith("WARNING: Location")][-3:]
        return None, f"install failed: {' / '.join(tail)[-400:]}"
    return None, "not installed (run `make bench-venvs`)"


def run_tool(tool: str, job: dict, in_process: bool, timeout: float) -> dict:
    module, venv = RUNNERS[tool][:2]
    if in_process and venv is None:
        import importlib

        return importlib.import_module(module).run(job)
    if venv is None:
        python = sys.executable
    else:
        python, why = peer_python(venv)
        if python is None:
            return {"error": why}
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        try:
            proc = subprocess.run([python, "-m", module, str(job_path), str(out_path)], cwd=ROOT,
                                  env=common.env_for_runner(job["threads"], job.get("mode") == "memory"),
                                  capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if not out_path.is_file():
            err = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"runner exited {proc.returncode}: {' / '.join(err)[-400:]}"}
        return json.loads(out_path.read_text(encoding="utf-8"))


def merge_memory(timed: dict, memory: dict) -> None:
    """Put the memory run's peaks into the time run's rows (same workload, same tool name)."""
    if "error" in timed:
        return
    if "error" in memory:
        timed["memory_error"] = memory["error"]
        return
    for w, rows in memory.get("workloads", {}).items():
        peaks = {r["tool"]: r for r in rows}
        for r in timed.get("workloads", {}).get(w, []):
            m = peaks.get(r["tool"])
            if m is None:
                continue
            if "peak_mib" in m:
                r["peak_mib"] = m["peak_mib"]
            elif "error" in m and "error" not in r:
                r["peak_error"] = m["error"]


def take_memory_only(timed: dict, memory: dict, workloads: list[str]) -> None:
    """The memory run's rows of the workloads that are never timed (MEMORY_ONLY), as they are."""
    if not workloads:
        return
    if "error" in memory:
        for w in workloads:
            timed.setdefault("workloads", {})[w] = [dict(tool="probe", fields=[], error=memory["error"])]
        return
    for w in workloads:
        if w in memory.get("workloads", {}):
            timed.setdefault("workloads", {})[w] = memory["workloads"][w]
    timed.setdefault("versions", memory.get("versions", {}))


def machine() -> str:
    """CPU model and core count, as the header states them."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()})"


def run(size: str = "135m", repeats: int = DEFAULTS["repeats"], threads: int = 2, peers=PEERS,
        only=WORKLOADS, in_process: bool = False, budget_s: float = DEFAULTS["budget"],
        timeout: float = 3600.0, log=print, full: bool = False, spread: float = DEFAULTS["spread"],
        memory_only=None) -> dict:
    """Build the jobs, run every tool (a time run, then a memory run), return {"jobs", "results", "meta"}."""
    common.setup_torch(threads)
    memory_only = tuple(WORKLOADS if full else MEMORY_WORKLOADS) if memory_only is None else tuple(memory_only)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as tmp:
        start = time.time()
        jobs = build_jobs(size, Path(tmp), full=full)
        jobs.update(threads=threads, repeats=repeats, budget_s=budget_s, spread=spread, full=full)
        log(f"[bench] jobs built in {time.time() - start:.0f} s")
        results, seconds = {}, {}
        for tool in ("probe",) + tuple(peers):
            can = RUNNERS[tool][2] if full else RUNNERS[tool][3]
            wanted = [w for w in can if w in only]
            if not wanted:
                continue
            timed = [w for w in wanted if w not in MEMORY_ONLY]
            t0 = time.time()
            if timed:
                log(f"[bench] {tool}: {' '.join(timed)} (time) ...")
                results[tool] = run_tool(tool, dict(jobs, only=timed, mode="time"), in_process, timeout)
            else:
                results[tool] = {"workloads": {}}
            if "error" in results[tool]:
                log(f"[bench] {tool}: {results[tool]['error']}")
            mem = [w for w in wanted if w in memory_only or w in MEMORY_ONLY]
            if mem and "error" not in results[tool]:
                log(f"[bench] {tool}: {' '.join(mem)} (memory) ...")
                memory = run_tool(tool, dict(jobs, only=mem, mode="memory"), in_process, timeout)
                merge_memory(results[tool], memory)
                take_memory_only(results[tool], memory, [w for w in mem if w in MEMORY_ONLY])
            seconds[tool] = time.time() - t0
            log(f"[bench] {tool}: done in {seconds[tool]:.0f} s")
        meta = dict(size=size, repeats=repeats, threads=threads, seconds=time.time() - start,
                    tool_seconds=seconds, machine=machine(), cpus=os.cpu_count(), only=list(only),
                    peers=list(peers), full=full, budget_s=budget_s, spread=spread,
                    memory_only=list(memory_only) + [w for w in MEMORY_ONLY if w in only and w not in memory_only],
                    date=started.strftime("%Y-%m-%d %H:%M UTC"))
        return {"jobs": jobs, "results": results, "meta": meta}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("135m", "tiny"), default="135m")
    parser.add_argument("--full", action="store_true",
                        help="the old run: 3 rounds of everything, every peer variant, memory everywhere (~1 h)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"most timed rounds after the first run (default {DEFAULTS['repeats']}, --full {FULL['repeats']})")
    parser.add_argument("--spread", type=float, default=None,
                        help="stop repeating once the ratio to the limit varies less than this "
                             f"(default {DEFAULTS['spread']}, --full {FULL['spread']}: never)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every process")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds per workload and process: fewer rounds past it "
                             f"(default {DEFAULTS['budget']:.0f}, --full {FULL['budget']:.0f})")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS))
    parser.add_argument("--no-peers", action="store_true", help="probe against the limits only")
    parser.add_argument("--provisional", default=None, metavar="WHY",
                        help="mark the numbers provisional in the report's header, saying why")
    parser.add_argument("--write", default=None, help="write the Markdown report here")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)
    base = FULL if args.full else DEFAULTS
    pick = lambda value, key: base[key] if value is None else value  # noqa: E731
    peers = () if args.no_peers else tuple(args.peers)
    out = run(args.size, pick(args.repeats, "repeats"), args.threads, peers, tuple(args.only),
              budget_s=pick(args.budget, "budget"), full=args.full, spread=pick(args.spread, "spread"))
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    report = table.report(out, command=command.strip(), provisional=args.provisional)
    print(report)
    if args.write:
        Path(args.write).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(table.strip_bulk(out), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
