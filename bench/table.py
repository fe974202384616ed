"""Results -> bench/results.md: one table per workload, agreement with probe, targets."""

from __future__ import annotations

import math

TITLES = {
    "W1": "W1: score {n} prompt/target pairs, {tokens} target tokens",
    "W2": "W2: generate {new} tokens for {n} prompts (greedy)",
    "W3": "W3: diagnose_many of {n} cases on a base/tuned LoRA pair",
    "W4": "W4: sweep of {n} prompts (P(\" Beijing\"))",
    "W5": "W5: one {tokens}-token sequence, vocabulary {vocab:,}",
    "W6": "W6: score one {tokens:,}-token answer, vocabulary {vocab:,}",
    "W7": "W7: shift map of {n} prompts x {new}-token answers on a base/tuned LoRA pair",
    "W8": "W8: data_loss of {n} training examples on a base/tuned LoRA pair",
    "W9": "W9: gradient attribution's peak memory over {sizes} training examples",
}
# W9: the largest size's peak at most this times the smallest's, give or take W9_SLACK_MIB (a tiny
# model's peaks are a few MiB, where one allocator page run more is a large ratio)
W9_FLAT = 1.10
W9_SLACK_MIB = 16
# probe's median over its limit's, per workload (and row group: W3's sampled row).
RATIO_TARGETS = {"W1": 1.25, "W2": 1.15, "W3": 2.19, "W4": 1.3, "W7": 2.2, "W8": 1.15}
GROUP_TARGETS = {("W3", "samples"): 1.5}
AIMS = {"W3": 1.6}  # information rows: where the next change should bring it
PEER_SPEEDUP = 3.0  # W1, W2: probe at least this much faster than the fastest peer with its fields
AGREE = 1e-4
PROBE_FIELDS = ["logprob", "rank", "entropy", "top-5"]
LABELS = {"probe": "probe", "plain": "transformers", "minicons": "minicons", "inseq": "inseq"}


def _title(w: str, job: dict) -> str:
    if w in ("W1", "W4"):
        return TITLES[w].format(n=len(job["seqs"]), tokens=sum(job["n_answer"]))
    if w == "W2":
        return TITLES[w].format(n=len(job["seqs"]), new=job["new_tokens"])
    if w == "W3":
        return TITLES[w].format(n=len(job["cases"]))
    if w == "W6":
        return TITLES[w].format(tokens=job["n_answer"], vocab=job["vocab"])
    if w == "W7":
        return TITLES[w].format(n=len(job["prompts"]), new=job["new_tokens"])
    if w == "W8":
        return TITLES[w].format(n=len(job["records"]))
    if w == "W9":
        return TITLES[w].format(sizes=" and ".join(f"{n:,}" for n in job["sizes"]))
    return TITLES[w].format(tokens=job["tokens"], vocab=job["vocab"])


def agreement(row: dict, ref: dict, generation: bool = False) -> dict:
    """Max |logprob diff| over the tokens both tools agree on, and how many sequences agree.

    Scoring: a sequence counts where the tool scored exactly probe's target tokens (another
    split of the prompt/target boundary gives other tokens, not comparable). Generation: the
    tokens up to the first one that differs are compared.
    """
    if "totals" in row and "totals" in ref:
        diffs = [abs(a - b) for a, b in zip(row["totals"], ref["totals"])]
        return dict(diff=max(diffs, default=float("nan")), same=len(diffs), n=len(diffs), unit="prompts")
    if "tokens" not in row or "tokens" not in ref:
        return {}
    diff, same, n = 0.0, 0, len(ref["tokens"])
    compared = 0
    for i, (mine, theirs) in enumerate(zip(row["tokens"], ref["tokens"])):
        if list(mine) == list(theirs):
            same += 1
            upto = len(mine)
        elif generation:
            upto = next((j for j, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
        else:
            continue
        if "logprobs" in row:
            for a, b in zip(row["logprobs"][i][:upto], ref["logprobs"][i][:upto]):
                diff = max(diff, abs(a - b))
                compared += 1
    out = dict(same=same, n=n, unit="sequences" if generation else "pairs")
    if "logprobs" in row and compared:
        out["diff"] = diff
    return out


def _fmt_s(row: dict) -> str:
    if "median_s" not in row:  # a memory workload's row: one run under the memory run's malloc
        return f"not timed ({row['memory_run_s']:.1f} s in the memory run)" if "memory_run_s" in row else "not timed"
    return f"{row['median_s']:.3f} ({row['runs']}{'*' if row.get('first_only') else ''})"


def _rows_of(results: dict, tool: str, w: str) -> list[dict] | None:
    res = results.get(tool)
    if res is None:
        return None
    if "error" in res:
        return [dict(tool=LABELS[tool], error=res["error"], fields=[])]
    return res.get("workloads", {}).get(w)


def workload_rows(out: dict, w: str) -> list[dict]:
    """Every row of workload ``w`` with its tool's in-process limit, ratio and agreement."""
    results = out["results"]
    probe_rows = _rows_of(results, "probe", w) or []
    probe_row = next((r for r in probe_rows if r["tool"].startswith("probe") and "error" not in r), None)
    rows = []
    for tool in results:
        got = _rows_of(results, tool, w)
        if got is None:
            continue
        limits = {}
        for r in got:
            if r.get("limit") and "error" not in r:
                limits.setdefault(r.get("group"), r)
        version = results[tool].get("versions", {}).get(tool if tool != "plain" else "transformers")
        for r in got:
            limit = limits.get(r.get("group"))
            r = dict(r, runner=tool)
            if tool != "probe" and not r.get("limit"):
                name = r["tool"]
                r["label"] = name if not version or version in name else name.replace(":", f" {version}:", 1)
            else:
                r["label"] = r["tool"] if tool == "probe" else r["tool"].replace("limit", f"limit ({LABELS[tool]} process)", 1)
            if limit is not None and "median_s" in r:
                r["ratio"] = r["median_s"] / limit["median_s"]
                r["limit_s"] = limit["median_s"]
            if probe_row is not None and r is not probe_row and r.get("tool") != probe_row["tool"]:
                r["agree"] = agreement(r, probe_row, generation=(w == "W2"))
            rows.append(r)
    return rows


def _agree_cells(r: dict) -> tuple[str, str]:
    a = r.get("agree") or {}
    if not a:
        return "", ""
    diff = a.get("diff")
    same = f"{a['same']}/{a['n']}"
    return ("" if diff is None else f"{diff:.1e}"), same


def workload_table(rows: list[dict]) -> str:
    lines = ["| tool | returns | median s (runs) | x limit | peak MiB | max abs logprob diff vs probe | "
             "same tokens as probe | note |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "na" in r:
            lines.append(f"| {r['label']} | | n/a ({_esc(r['na'])}) | | | | | |")
            continue
        if "error" in r:
            lines.append(f"| {r['label']} | {', '.join(r.get('fields', []))} | failed | | | | | "
                         f"{_esc(_short(r['error']))} |")
            continue
        ratio = f"**{r['ratio']:.2f}x**" if "ratio" in r else ""
        diff, same = _agree_cells(r)
        note = r.get("note") or r.get("what") or ""
        if "peak_error" in r:
            note = f"{note} (memory run failed: {_short(r['peak_error'], 120)})".strip()
        peak = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else ""
        lines.append(f"| {r['label']} | {', '.join(r.get('fields', []))} | {_fmt_s(r)} | {ratio} | "
                     f"{peak} | {diff} | {same} | {_esc(note)} |")
    return "\n".join(lines)


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def targets(out: dict, by_w: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, passed) rows; passed is None when it could not be measured."""
    res = []

    def probe_of(w, group=None):
        return next((r for r in by_w[w] if r["runner"] == "probe" and r["tool"].startswith("probe")
                     and r.get("group") == group), None)

    wanted = [(w, None, x) for w, x in RATIO_TARGETS.items()] + [(w, g, x) for (w, g), x in GROUP_TARGETS.items()]
    for w, group, limit_max in wanted:
        if w not in by_w:
            continue
        p = probe_of(w, group)
        name = f"{w}: {p['tool'] if p and group else 'probe'} <= {limit_max}x the limit"
        if p is None or "ratio" not in p:
            why = (f"n/a ({p['na']})" if p and "na" in p else p.get("error", "no result")) if p else "no result"
            res.append((name, _esc(why)[:120], None))
        else:
            res.append((name, f"{p['ratio']:.2f}x", p["ratio"] <= limit_max))
        if w in AIMS and group is None and p is not None and "ratio" in p:
            res.append((f"{w} (aim): probe <= {AIMS[w]}x the limit", f"{p['ratio']:.2f}x",
                        None if p["ratio"] > AIMS[w] else True))
    for w in ("W1", "W2"):
        if w not in by_w:
            continue
        p = next((r for r in by_w[w] if r["runner"] == "probe" and "ratio" in r and r["tool"].startswith("probe")), None)
        peers = [r for r in by_w[w] if r["runner"] != "probe" and not r.get("limit") and "ratio" in r]
        same = [r for r in peers if set(PROBE_FIELDS) <= set(r["fields"])]
        if p is None:
            continue
        if same:
            best = min(same, key=lambda r: r["ratio"])
            speedup = best["ratio"] / p["ratio"]
            res.append((f"{w}: probe >= {PEER_SPEEDUP:.0f}x faster than the fastest peer with the same fields",
                        f"{speedup:.2f}x vs {best['label']} ({best['ratio']:.2f}x its limit)", speedup >= PEER_SPEEDUP))
        else:
            res.append((f"{w}: probe >= {PEER_SPEEDUP:.0f}x faster than the fastest peer with the same fields",
                        "no peer returned all of logprob, rank, entropy, top-5", None))
        if peers:
            best = min(peers, key=lambda r: r["ratio"])
            res.append((f"{w} (information): probe's speed-up over the fastest peer, whatever its fields",
                        f"{best['ratio'] / p['ratio']:.2f}x vs {best['label']} ({', '.join(best['fields'])})", None))
    for w in ("W1", "W5"):
        if w not in by_w:
            continue
        lim = next((r for r in by_w[w] if r["runner"] == "probe" and r.get("limit")), None)
        if lim is not None and "agree" in lim and "diff" in lim["agree"]:
            a = lim["agree"]
            res.append((f"{w}: probe's logprobs = log_softmax + gather on the limit's logits (<= {AGREE:g})",
                        f"{a['diff']:.1e} over {a['same']}/{a['n']} pairs", a["diff"] <= AGREE and a["same"] == a["n"]))
    if "W4" in by_w:
        lim = next((r for r in by_w["W4"] if r["runner"] == "probe" and r.get("limit")), None)
        if lim is not None and lim.get("agree", {}).get("diff") is not None:
            d = lim["agree"]["diff"]
            res.append((f"W4: P(watch) = the limit's (log, <= {AGREE:g} per prompt)", f"{d:.1e}", d <= AGREE))
    if "W2" in by_w:
        lim = next((r for r in by_w["W2"] if r["runner"] == "probe" and r.get("limit")), None)
        if lim is not None and lim.get("agree"):
            a = lim["agree"]
            res.append(("W2: probe generates the same tokens as model.generate", f"{a['same']}/{a['n']}",
                        a["same"] == a["n"]))
    if "W5" in by_w:
        res.append(w5_memory(out, by_w["W5"]))
    if "W6" in by_w:
        res += w6_targets(out, by_w["W6"])
    if "W9" in by_w:
        res.append(w9_flat(out, by_w["W9"]))
    return res


def w9_flat(out: dict, rows: list[dict]) -> tuple[str, str, bool | None]:
    """Gradient attribution streams the examples: its peak at the largest size is at most
    W9_FLAT times its peak at the smallest."""
    sizes = out["jobs"]["W9"]["sizes"]
    name = (f"W9: gradient attribution's peak memory over {max(sizes):,} examples <= {W9_FLAT}x its peak over "
            f"{min(sizes):,} (or + {W9_SLACK_MIB} MiB; flat in the number of examples)")
    peaks = {r.get("examples"): r.get("peak_mib") for r in rows if r["runner"] == "probe" and "examples" in r}
    small, big = peaks.get(min(sizes)), peaks.get(max(sizes))
    if small is None or big is None:
        return name, "no result", None
    ratio = f"{big / small:.2f}x" if small > 0 else "n/a"
    return (name, f"{big:.0f} MiB vs {small:.0f} MiB ({ratio}, {big - small:+.0f} MiB)",
            big <= max(W9_FLAT * small, small + W9_SLACK_MIB))


def w6_targets(out: dict, rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """probe.score's peak over the hidden-states forward's, and the lazy head's time over the old path's."""
    job = out["jobs"]["W6"]
    mine = [r for r in rows if r["runner"] == "probe"]
    lim = next((r for r in mine if r.get("limit")), None)
    scored = [r for r in mine if r["tool"].startswith("probe")]
    lazy = next((r for r in scored if r.get("lazy")), None)
    old = next((r for r in scored if not r.get("lazy")), None)
    new = lazy if lazy is not None else old  # without the switch, today's path is all there is
    res = []
    name = f"W6: probe.score's peak memory <= the hidden-states forward's + {job['budget_mib']} MiB"
    if new is None or lim is None or new.get("peak_mib") is None or lim.get("peak_mib") is None:
        res.append((name, "no result", None))
    else:
        extra = new["peak_mib"] - lim["peak_mib"]
        which = "" if lazy is not None else " (today's path: no LAZY_HEAD switch)"
        res.append((name, f"probe {new['peak_mib']:.0f} MiB vs {lim['peak_mib']:.0f} MiB ({extra:+.0f} MiB){which}",
                    extra <= job["budget_mib"]))
    name = f"W6: probe.score with LAZY_HEAD=True <= {job['time_factor']}x the old path (LAZY_HEAD=False)"
    if lazy is None:
        res.append((name, "n/a (probe.engine.forward.LAZY_HEAD not in this probe: the old path is the only one)", None))
    elif "median_s" not in lazy or old is None or "median_s" not in old:
        res.append((name, _esc(lazy.get("error") or (old or {}).get("error") or "no result")[:120], None))
    else:
        ratio = lazy["median_s"] / old["median_s"]
        res.append((name, f"{ratio:.3f}x ({lazy['median_s']:.2f} s vs {old['median_s']:.2f} s)",
                    ratio <= job["time_factor"]))
    return res


CHUNK_MIB = 16  # probe.engine.stats.CHUNK_ELEMENTS float32


def w5_memory(out: dict, rows: list[dict]) -> tuple[str, str, bool | None]:
    """probe's peak may exceed the bare forward's by less than half a [seq x vocab] float32
    copy (a few chunks' temporaries where the sequence is so short that half a copy is less)."""
    job = out["jobs"]["W5"]
    copy_mib = job["tokens"] * job["vocab"] * 4 / 2**20
    allowed = max(copy_mib / 2, 4 * CHUNK_MIB)
    name = (f"W5: probe's peak memory above the bare forward's < half a [seq x vocab] float32 copy "
            f"({copy_mib / 2:.0f} MiB; at least 4 chunks, {4 * CHUNK_MIB} MiB)")
    p = next((r for r in rows if r["runner"] == "probe" and r["tool"].startswith("probe") and "peak_mib" in r), None)
    bare = [r for r in rows if r["runner"] == "probe" and "peak_mib" in r and not r["tool"].startswith("probe")]
    if p is None or not bare:
        return name, "no result", None
    ref = max(bare, key=lambda r: r["peak_mib"])
    extra = p["peak_mib"] - ref["peak_mib"]
    return name, f"probe {p['peak_mib']:.0f} MiB vs {ref['peak_mib']:.0f} MiB ({extra:+.0f} MiB)", extra <= allowed


EXPLAIN = {
    "minicons": "minicons finds where the target starts by counting the prompt's tokens that are not the "
                "pad token: a chat prompt that contains the pad token (SmolLM2's is `<|im_end|>`) is scored "
                "from the wrong position",
    "inseq": "inseq decodes the generated text and tokenizes it again: the scored tokens are not always the "
             "ones the model produced",
    "plain": "the plain recipe tokenizes the prompt alone to find where the target starts: a token that "
             "merges across the boundary shifts the target",
}


def auto_notes(by_w: dict) -> list[str]:
    """What the agreement columns mean where a tool disagrees with probe."""
    notes = []
    for w, rows in by_w.items():
        for r in rows:
            a = r.get("agree") or {}
            if r.get("limit") or not a:
                continue
            if a.get("same", 0) < a.get("n", 0) and r["runner"] in EXPLAIN:
                notes.append(f"{w}, {r['label']}: {a['same']}/{a['n']} {a['unit']} with probe's tokens; "
                             f"{EXPLAIN[r['runner']]}.")
            if a.get("diff") is not None and a["diff"] > AGREE:
                notes.append(f"{w}, {r['label']}: logprobs up to {a['diff']:.1e} away from probe's on the same "
                             f"tokens (more than {AGREE:g}).")
    return notes


def report(out: dict, command: str = "python -m bench", provisional: str | None = None) -> str:
    meta, jobs = out["meta"], out["jobs"]
    by_w = {w: workload_rows(out, w) for w in meta["only"]}
    by_w = {w: rows for w, rows in by_w.items() if rows}
    full = meta.get("full", False)
    tools = ", ".join(f"{LABELS.get(t, t)} {s / 60:.1f}" for t, s in meta.get("tool_seconds", {}).items())
    memory_only = meta.get("memory_only", meta["only"])
    if full:
        repeats = (f"Medians of {meta['repeats']} timed rounds after one first run (a warm-up), the tool and the "
                   f"limit taking turns (fewer where the first runs showed the rounds would pass "
                   f"{meta.get('budget_s', 300):.0f} s per workload and process).")
    else:
        repeats = (f"Adaptive repeats: every callable runs once (a warm-up), then the tools and the limit take "
                   f"turns in rounds; a tool stops once its ratio to the limit over its runs so far (the first "
                   f"included) varies by at most {meta.get('spread', 0.03):.0%}, after at most {meta['repeats']} "
                   f"rounds, or when the next round would pass {meta.get('budget_s', 90):.0f} s per workload and "
                   f"process. Where the first runs alone took more than half of that, or a tool's first run more "
                   f"than a third, that first run is the measurement (marked `*` after the run count). "
                   f"Medians over the rounds' runs; the count is in brackets.")
    parts = [
        "# probe benchmark: against the limit and the peers",
        f"`{command}`: {'the full run' if full else 'the default run'}, {meta.get('date', '?')}, "
        f"{meta['seconds'] / 60:.1f} min wall time" + (f" (minutes per tool: {tools})" if tools else "") + ".",
    ]
    if provisional:
        parts.append(f"**Provisional**: {provisional}")
    parts += [
        f"Machine: {meta['machine']}; fp32 on CPU, `torch.set_num_threads({meta['threads']})` in every process.",
        f"Model (W1, W2, W4): {jobs['model_description']}. Pair (W3, W7): {jobs.get('pair_description', '?')}.",
        "Each tool runs in its own processes and times the limit there too; **x limit** is the tool's median "
        "over the limit's median in the same process. " + repeats,
        "Memory is measured in a separate run of each runner, never in the timed runs: a process started with "
        "`MALLOC_MMAP_THRESHOLD_=131072` (freed tensors go back to the system, so a later call cannot hide its "
        "memory in pages an earlier one left; it also makes allocation-heavy code slower, which is why the "
        "timed runs use the default malloc) runs each callable once; peak RSS above the RSS before the call, "
        "from the kernel's high-water mark (`VmHWM`, reset through `/proc/self/clear_refs`). "
        f"Measured on {', '.join(memory_only) if memory_only else 'no workload'}"
        + ("" if full else " in the default run (`--full`: every workload)") + "; an empty cell was not measured.",
        "Agreement: per-token logprobs against probe's, where the tool scored the same tokens "
        f"(must be <= {AGREE:g} in fp32). *same tokens*: pairs (W1, W5, W6) whose target tokens equal "
        "probe's; another count means the tool splits the prompt/target boundary differently; "
        "sequences (W2) identical to probe's.",
    ]
    versions = []
    for tool, res in out["results"].items():
        v = res.get("versions")
        if v:
            versions.append(f"{LABELS[tool]}: " + ", ".join(f"{k} {x}" for k, x in v.items()))
        elif "error" in res:
            versions.append(f"{LABELS[tool]}: {_esc(res['error'])}")
    parts.append("Versions: " + "; ".join(versions) + ".")
    for w, rows in by_w.items():
        title = _title(w, jobs[w])
        extra = ""
        if w in ("W5", "W6"):
            extra = f"\n\nModel: {jobs[w]['model_description']}."
        if w == "W6":
            extra += (" The limit is the decoder's forward returning hidden states only; the targets: probe's peak "
                      f"at most {jobs[w]['budget_mib']} MiB above it, and the lazy head (`probe.engine.forward.LAZY_HEAD`) "
                      f"at most {jobs[w]['time_factor']}x the old path's time.")
        if w == "W7":
            extra = f"\n\nPrompts: {jobs[w]['source']}."
        if w == "W8":
            extra = f"\n\nData: {jobs[w]['source']} (the trainer's default mask)."
        if w == "W9":
            n, unique = max(jobs[w]["sizes"]), jobs[w]["unique"]
            how = f"its {unique} examples repeated to {n:,}" if n > unique else f"the first {n} of its {unique} examples"
            extra = (f"\n\nData: {jobs[w]['source']} ({how}; the trainer's mask). Memory only, from the memory run (each "
                     "callable once); its seconds are under that run's malloc setting, not timings.")
        parts.append(f"## {title}{extra}\n\n{workload_table(rows)}")
    notes = auto_notes(by_w)
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {n}" for n in notes))
    target_rows = targets(out, by_w)
    lines = ["| target | measured | result |", "|---|---|---|"]
    for name, measured, ok in target_rows:
        verdict = "n/a" if ok is None else ("**pass**" if ok else "**FAIL**")
        lines.append(f"| {name} | {measured} | {verdict} |")
    parts.append("## Targets\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def strip_bulk(out: dict) -> dict:
    """The results without per-token lists and inputs (for --json)."""
    bulky = {"tokens", "logprobs", "totals", "ranks", "result", "trace"}

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in bulky}
        if isinstance(x, list):
            return [clean(v) for v in x]
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    return {"meta": out["meta"], "results": clean(out["results"])}
