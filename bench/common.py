"""What every runner shares: timing, peak memory, the limits, JSON in and out.

Imports only torch and transformers (never probe): the peers' runners import this module
from their own virtual environments, with whatever transformers version pip gave them.

Time and memory are measured in separate runs of a runner (``job["mode"]``): time with
glibc's default malloc, memory in a process started with ``MALLOC_MMAP_THRESHOLD_`` fixed, so
freed tensors go back to the system and a later call does not hide its memory in heap pages
an earlier call left behind (that setting makes allocation-heavy code slower: 3x for probe on
W5, hence never in a time run). Memory is the peak resident set size (RSS) above the RSS just
before the call: the kernel's high-water mark (VmHWM) is reset through
``/proc/self/clear_refs`` before the call and read back from ``/proc/self/status`` after it.
Where the reset is not possible, ``resource.getrusage`` (never reset) is used.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import statistics
import sys
import time
import traceback
from importlib import metadata

MEMORY_HOW = "peak RSS above the RSS before the call (VmHWM reset per run)"


def settings(job: dict) -> dict:
    """compare()'s keyword arguments for this job (repeat cap, budget, spread, time/memory)."""
    return dict(repeats=job["repeats"], budget_s=job["budget_s"], spread=job.get("spread", SPREAD),
                memory=job.get("mode") == "memory")


def row(rec: dict, tool: str, fields, **extra) -> dict:
    """A results-table row from one ``compare`` record: its timings and memory, or its error."""
    if "error" in rec:
        return dict(tool=tool, fields=list(fields), error=rec["error"], **extra)
    keys = ("median_s", "times", "runs", "first_only", "peak_mib")
    return dict(tool=tool, fields=list(fields), **{k: rec[k] for k in keys if k in rec}, **extra)


def na(tool: str, why: str, **extra) -> dict:
    """A row for something this probe cannot do yet: shown as ``n/a (why)``, never a failure."""
    return dict(tool=tool, fields=[], na=why, **extra)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measured(fn, memory: bool = False):
    """Run ``fn()`` once: (seconds, peak MiB above the start or None, result)."""
    gc.collect()
    if not memory:
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, None, result
    resettable = _reset_peak()
    if resettable:
        before = _status_kib("VmRSS")
    else:  # pragma: no cover - kernels without clear_refs
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, max(peak - before, 0) / 1024, result


SPREAD = 0.03  # stop repeating once every tool's ratio to the limit varies less than this


def _failed(err) -> dict:
    return {"error": f"{type(err).__name__}: {err}"[:400], "trace": traceback.format_exc()[-2000:]}


def _spread(values) -> float:
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid > 0 else math.inf


def compare(fns: dict, repeats: int, budget_s: float = 600.0, spread: float = SPREAD,
            memory: bool = False, ref: str = "limit") -> dict:
    """Time (or measure the memory of) several callables against each other in one process.

    Memory (``memory=True``, a process started with ``MALLOC_MMAP_THRESHOLD_``): each callable
    runs once and its peak RSS above the start is recorded; no timings are reported, since the
    fixed threshold slows allocation-heavy code (3x on W5).

    Time (default malloc): every callable runs once (the first run, a warm-up), then they take
    turns in rounds so that a noisy neighbour slows all of them alike. Repeats are adaptive: a
    callable stops once the ratio of its time to ``ref``'s in the same round, over its runs so
    far (the first included), varies by at most ``spread`` (relative to its median); the rounds
    end when every callable has stopped, after ``repeats`` rounds, or when the next round would
    pass ``budget_s`` (at least one round is run unless the first runs alone took more than half
    the budget; a callable whose first run took more than a third of it is not repeated). The
    median is over the rounds' runs, or the first run alone (``first_only``) where no round ran.

    Returns ``{name: {"median_s", "times", "runs", "first_only", "result"}}`` (time) or
    ``{name: {"peak_mib", "result"}}`` (memory); a callable that raises gets ``{"error": ...}``
    and is dropped from the later rounds.
    """
    out: dict = {}
    if memory:
        for name, fn in fns.items():
            try:
                _, peak, result = measured(fn, memory=True)
                out[name] = {"peak_mib": peak, "result": result}
            except Exception as err:  # noqa: BLE001 - reported in the table
                out[name] = _failed(err)
        return out
    start = time.perf_counter()
    first: dict = {}
    for name, fn in fns.items():
        try:
            seconds, _, result = measured(fn)
            first[name] = seconds
            out[name] = {"times": [], "result": result}
        except Exception as err:  # noqa: BLE001 - reported in the table
            out[name] = _failed(err)
    ref = ref if ref in first else None
    done = {n for n, s in first.items() if s > budget_s / 3 and n != ref}
    rounds: list[dict] = [dict(first)]
    if sum(first.values()) <= budget_s / 2:
        for r in range(repeats):
            ok = [n for n in first if "error" not in out[n]]
            active = [n for n in ok if n not in done and n != ref]
            if not active:
                break
            names = ([ref] if ref in ok else []) + active
            guess = sum(rounds[-1].get(n, first[n]) for n in names)
            if r > 0 and time.perf_counter() - start + guess > budget_s:
                break
            this: dict = {}
            for name in names:
                try:
                    seconds, _, result = measured(fns[name])
                except Exception as err:  # noqa: BLE001
                    out[name] = _failed(err)
                    continue
                this[name] = seconds
                out[name]["times"].append(seconds)
                out[name]["result"] = result
            rounds.append(this)
            for name in active:
                if name not in this:
                    continue
                if ref in this:
                    ratios = [rd[name] / rd[ref] for rd in rounds if name in rd and rd.get(ref, 0) > 0]
                else:
                    ratios = [rd[name] for rd in rounds if name in rd]
                if len(ratios) >= 2 and _spread(ratios) <= spread:
                    done.add(name)
    for name, rec in out.items():
        if "error" in rec:
            continue
        rec["first_only"] = not rec["times"]
        if not rec["times"]:
            rec["times"] = [first[name]]
        rec["median_s"] = statistics.median(rec["times"])
        rec["runs"] = len(rec["times"])
    return out


def fixed_mmap_threshold(size: int = 131072) -> bool:
    """Make glibc serve every allocation >= ``size`` with mmap (returned to the system when
    freed), as ``MALLOC_MMAP_THRESHOLD_`` does for a new process; for runs in this process."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, size))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False


def setup_torch(threads: int, memory: bool = False):
    """Threads and seed; in a memory run also the fixed mmap threshold (never in a time run)."""
    import torch

    if memory:
        fixed_mmap_threshold()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def load_model(folder: str, dtype: str = "float32"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    kwargs = {"dtype" if version("transformers") >= "4.56" else "torch_dtype": getattr(torch, dtype)}
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).eval()
    return model, tok


def left_pad(seqs, pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq):] = 1
    return ids, mask


def bare_forward(model, seqs, pad_id: int, keep: int | None = None):
    """The limit for scoring: one forward over ``seqs`` (left-padded, positions from the
    mask) returning the logits of the last ``keep`` positions (all when None), nothing else.

    With ``keep``, the output layer runs on those positions only (the decoder's hidden states,
    then the output embeddings), which works on every transformers version.
    """
    import torch

    ids, mask = left_pad(seqs, pad_id)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        if keep is None:
            return model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        decoder = getattr(model, model.base_model_prefix)
        hidden = decoder(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)[0]
        return model.get_output_embeddings()(hidden[:, -keep:])


def batched_limit(model, seqs, pad_id: int, batches, keeps):
    """The scoring limit over several batches (index lists), each keeping ``keeps[i]`` logits."""
    return [bare_forward(model, [seqs[i] for i in b], pad_id, k) for b, k in zip(batches, keeps)]


def bare_generate(model, seqs, pad_id: int, new_tokens: int, eos):
    """The limit for generation: greedy ``model.generate`` on a left-padded batch, no scores."""
    import torch

    ids, mask = left_pad(seqs, pad_id)
    with torch.no_grad():
        return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                              do_sample=False, pad_token_id=pad_id, eos_token_id=eos)


def length_batches(lengths, batch_size: int):
    """Index batches, shortest first (how probe.score_many groups pairs)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def main(run) -> int:
    """``python -m bench.peers.X JOB.json OUT.json``: ``run(job) -> dict`` written as JSON."""
    job_path, out_path = sys.argv[1], sys.argv[2]
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    try:
        result = run(job)
    except Exception as err:  # noqa: BLE001 - the table shows it
        result = {"error": f"{type(err).__name__}: {err}"[:600], "trace": traceback.format_exc()[-3000:]}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


def ranks_naive(logp, targets):
    """The usual recipe: sort the whole vocabulary, find where the target lands (1-based)."""
    order = logp.argsort(dim=-1, descending=True)
    return (order == targets[..., None]).nonzero()[:, -1] + 1


def entropy(logp):
    return -(logp.exp() * logp).sum(-1)


def env_for_runner(threads: int, memory: bool = False) -> dict:
    """A runner's environment: ``MALLOC_MMAP_THRESHOLD_`` only in a memory run (time runs
    get glibc's default malloc, removed even where the caller's environment sets it)."""
    env = dict(os.environ)
    env.pop("MALLOC_MMAP_THRESHOLD_", None)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", TQDM_DISABLE="1")
    if memory:
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    return env


def until_eos(ids, eos) -> list:
    """Generated ids up to and including the first end-of-sequence id (padding dropped)."""
    eos = set(eos)
    for j, t in enumerate(ids):
        if t in eos:
            return list(ids[: j + 1])
    return list(ids)

