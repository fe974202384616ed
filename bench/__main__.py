"""``python -m bench``: probe against the limits and the peers; writes bench/results.md.

    python -m bench --write bench/results.md        # what `make bench` runs (peers included)
    python -m bench --no-peers                      # probe vs the limits only
    python -m bench --size tiny --repeats 1         # seconds: what the test suite runs

Each tool runs in its own process (probe and the plain transformers recipes in this
environment, minicons and inseq in their virtual environments under bench/.venvs/, made by
`make bench-venvs`), on the same model folder, the same strings and the same batches, and
each process also times the limit, so every ratio is measured within one process.
"""

from __future__ import annotations

import argparse
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
WORKLOADS = ("W1", "W2", "W3", "W4", "W5")

# tool -> (module, venv name or None for this environment, workloads it takes part in)
RUNNERS = {
    "probe": ("bench.core", None, WORKLOADS),
    "plain": ("bench.peers.plain", None, ("W1", "W2", "W5")),
    "minicons": ("bench.peers.minicons", "minicons", ("W1", "W5")),
    "inseq": ("bench.peers.inseq", "inseq", ("W1", "W2")),
}
PEERS = ("plain", "minicons", "inseq")


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
    module, venv, _ = RUNNERS[tool]
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
                                  env=common.env_for_runner(job["threads"]), capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if not out_path.is_file():
            err = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"runner exited {proc.returncode}: {' / '.join(err)[-400:]}"}
        return json.loads(out_path.read_text(encoding="utf-8"))


def run(size: str = "135m", repeats: int = 3, threads: int = 2, peers=PEERS,
        only=WORKLOADS, in_process: bool = False, budget_s: float = 300.0,
        timeout: float = 3600.0, log=print) -> dict:
    """Build the jobs, run every tool, return {"jobs", "results", "meta"}."""
    common.setup_torch(threads)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as tmp:
        start = time.time()
        jobs = build_jobs(size, Path(tmp))
        jobs.update(threads=threads, repeats=repeats, budget_s=budget_s)
        results = {}
        for tool in ("probe",) + tuple(peers):
            wanted = [w for w in RUNNERS[tool][2] if w in only]
            if not wanted:
                continue
            log(f"[bench] {tool}: {' '.join(wanted)} ...")
            t0 = time.time()
            results[tool] = run_tool(tool, dict(jobs, only=wanted), in_process, timeout)
            if "error" in results[tool]:
                log(f"[bench] {tool}: {results[tool]['error']}")
            log(f"[bench] {tool}: done in {time.time() - t0:.0f} s")
        meta = dict(size=size, repeats=repeats, threads=threads, seconds=time.time() - start,
                    machine=platform.machine(), cpus=os.cpu_count(), only=list(only),
                    peers=list(peers))
        return {"jobs": jobs, "results": results, "meta": meta}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("135m", "tiny"), default="135m")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every process")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds per workload and process: fewer timed runs past it")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS))
    parser.add_argument("--no-peers", action="store_true", help="probe against the limits only")
    parser.add_argument("--write", default=None, help="write the Markdown report here")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    args = parser.parse_args(argv)
    peers = () if args.no_peers else tuple(args.peers)
    out = run(args.size, args.repeats, args.threads, peers, tuple(args.only), budget_s=args.budget)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    report = table.report(out, command=command.strip())
    print(report)
    if args.write:
        Path(args.write).write_text(report, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(table.strip_bulk(out), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
