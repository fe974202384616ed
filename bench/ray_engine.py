"""Local ``diagnose_many`` against the same cases on 2 Ray workers, on the same machine.

    PYTHONPATH=. python -m bench.ray_engine            # the demo pair (SmolLM2-135M + LoRA), 16 cases
    PYTHONPATH=. python -m bench.ray_engine --tiny     # a tiny pair from a config: seconds

What it shows is the engine's overhead on one machine: the local run at 1 and at 2 torch
threads, the Ray run two one-thread workers on the same two cores (at best 2x the 1-thread run). Starting the cluster and
loading the pair in each worker are timed apart (paid once per engine, not per run). Prints one
Markdown table row per engine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch


def _pair(tiny: bool):
    import probe

    if not tiny:
        from probe.demo.pair import load_demo_pair

        return load_demo_pair(), "demo pair (SmolLM2-135M-Instruct + LoRA)"
    from probe.models.tiny import save_tiny

    folder = save_tiny(tempfile.mkdtemp(prefix="probe-bench-ray-"), "llama", "bpe", chat=True)
    return probe.load_pair(folder, folder), "tiny llama pair"


def _cases(n: int) -> list[dict]:
    from probe.demo.pair import SUITE

    with open(SUITE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()][:n]


def main(argv=None) -> int:
    import probe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-tokens", type=int, default=1024,
                        help="both runs' batches (default 1024: several batches, so both workers have work)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    (base, tuned), label = _pair(args.tiny)
    cases = _cases(args.cases)
    kw = dict(progress=False, max_new_tokens=args.new_tokens, batch_tokens=args.batch_tokens)
    probe.diagnose_many(base, tuned, cases[:1], **kw)  # warm-up
    t_local = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        t = time.perf_counter()
        local = probe.diagnose_many(base, tuned, cases, **kw)
        t_local[threads] = time.perf_counter() - t
    t = time.perf_counter()
    engine = probe.ray_engine(workers=2, threads=1, temp_dir=f"/tmp/rb{os.getpid()}")
    t_init = time.perf_counter() - t
    try:
        t = time.perf_counter()
        probe.diagnose_many(base, tuned, cases[:1], engine=engine, **kw)  # workers load the pair
        t_load = time.perf_counter() - t
        t = time.perf_counter()
        remote = probe.diagnose_many(base, tuned, cases, engine=engine, **kw)
        t_ray = time.perf_counter() - t
    finally:
        engine.close()
    same_verdicts = [r.verdict for r in local] == [r.verdict for r in remote]
    print(f"| engine | {label}, {len(cases)} cases x {args.new_tokens} tokens, batch_tokens {args.batch_tokens} | time | vs local |")
    print("|---|---|---|---|")
    print(f"| local | 1 process, torch 1 thread | {t_local[1]:.1f} s | 1.00x |")
    print(f"| local | 1 process, torch 2 threads | {t_local[2]:.1f} s | {t_local[2] / t_local[1]:.2f}x |")
    print(f"| ray, 2 workers | 1 thread each, same 2 cores (start {t_init:.1f} s, pair load + first case "
          f"{t_load:.1f} s, not counted) | {t_ray:.1f} s | {t_ray / t_local[1]:.2f}x |")
    print(f"same verdicts: {same_verdicts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
