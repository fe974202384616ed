"""probe's runner: probe against the limits, in one process.

    python -m bench.core JOB.json OUT.json     # what ``python -m bench`` starts
    python -m bench.core [options]             # same as ``python -m bench [options]``

For every workload the limit (the bare operation that any tool has to do) and probe take turns
in this process (see :func:`bench.common.compare`), so each ratio is measured in one process.
Besides timings and peak memory it returns per-token ids and logprobs, of probe and of the
limit (log_softmax + gather on the limit's logits, computed after the timed runs), for the
agreement columns.
"""

from __future__ import annotations

import copy
import tempfile

import torch

from bench import common

FIELDS = ["logprob", "rank", "entropy", "top-5"]


def _limit_logprobs(job: dict, logits_per_batch) -> tuple[list, list]:
    """Target ids and log_softmax + gather from the limit's kept logits, pair by pair."""
    tokens: list = [None] * len(job["seqs"])
    logprobs: list = [None] * len(job["seqs"])
    for batch, keep, logits in zip(job["batches"], job["keeps"], logits_per_batch):
        for r, i in enumerate(batch):
            n = job["n_answer"][i]
            ids = job["seqs"][i][-n:]
            rows = logits[r, keep - 1 - n: keep - 1].float()
            lp = torch.log_softmax(rows, -1).gather(1, torch.tensor(ids)[:, None])[:, 0]
            tokens[i], logprobs[i] = ids, lp.tolist()
    return tokens, logprobs


def _trace_out(traces) -> dict:
    return dict(tokens=[[s.id for s in t.steps] for t in traces],
                logprobs=[[s.logprob for s in t.steps] for t in traces],
                ranks=[[s.rank for s in t.steps] for t in traces])


def score_workload(lm, job: dict, repeats: int, budget: float, full_logits: bool = True) -> list[dict]:
    import probe

    model, pad = lm.model, job["pad_id"]
    pairs = [tuple(p) for p in job["pairs"]]
    fns = {
        "limit": lambda: common.batched_limit(model, job["seqs"], pad, job["batches"], job["keeps"]),
        "probe": lambda: probe.score_many(lm, pairs, batch_size=job["batch_size"], top_k=5, progress=False),
    }
    if full_logits:
        fns["full"] = lambda: common.bare_forward(model, job["seqs"], pad)
    res = common.compare(fns, repeats, budget)
    rows = []
    if "error" not in res["limit"]:
        tokens, logprobs = _limit_logprobs(job, res["limit"]["result"])
        rows.append(common.row(res["limit"], "limit", ["logits"], limit=True, tokens=tokens, logprobs=logprobs,
                         what=f"bare forward, same batches as probe ({len(job['batches'])}), "
                              "logits of the target positions only"))
    else:
        rows.append(common.row(res["limit"], "limit", ["logits"], limit=True))
    rows.append(common.row(res["probe"], "probe score_many", FIELDS,
                     **(_trace_out(res["probe"]["result"]) if "error" not in res["probe"] else {})))
    if full_logits:
        rows.append(common.row(res["full"], "bare forward, all logits, one batch", ["logits"],
                         what=f"one forward over all {len(job['seqs'])} sequences, full [batch x seq x vocab] logits"))
    return rows


def generate_workload(lm, job: dict, repeats: int, budget: float) -> list[dict]:
    import probe

    model, pad, eos, n = lm.model, job["pad_id"], job["eos"], job["new_tokens"]
    fns = {
        "limit": lambda: common.bare_generate(model, job["seqs"], pad, n, eos),
        "probe": lambda: probe.generate_many(lm, job["prompts"], max_new_tokens=n, top_k=5,
                                             batch_size=job["batch_size"], progress=False),
    }
    res = common.compare(fns, repeats, budget)
    rows = []
    limit = res["limit"]
    extra = {}
    if "error" not in limit:
        width = max(len(s) for s in job["seqs"])
        extra["tokens"] = [common.until_eos(row[width:].tolist(), eos) for row in limit["result"]]
    rows.append(common.row(limit, "limit", ["ids"], limit=True, what="model.generate, greedy, no scores", **extra))
    if "error" not in res["probe"]:
        traces = res["probe"]["result"]
        out = dict(tokens=[list(t.ids) for t in traces], logprobs=[[s.logprob for s in t.steps] for t in traces])
    else:
        out = {}
    rows.append(common.row(res["probe"], "probe generate_many", FIELDS, **out))
    return rows


def lora_pair(lm, rank: int = 8):
    """(base, tuned) sharing one copy of ``lm``'s weights, with a random LoRA adapter."""
    import probe
    from peft import LoraConfig, get_peft_model

    folder = tempfile.mkdtemp(prefix="probe-bench-lora-")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)
    torch.manual_seed(0)
    get_peft_model(copy.deepcopy(lm.model), config).save_pretrained(folder)
    return probe.load_pair((copy.deepcopy(lm.model), lm.tokenizer), adapter=folder)


def diagnose_workload(lm, job: dict, repeats: int, budget: float) -> list[dict]:
    """diagnose (4 runs + expected scored under both models) vs one plain generate per case
    on the tuned model, of the same length (``min_new_tokens``: the limit never stops early)."""
    import probe
    from probe.prompts import encode_prompt, render

    base, tuned = lora_pair(lm)
    prompts, n = job["prompts"], job["new_tokens"]
    seqs = [encode_prompt(tuned, render(tuned, p)) for p in prompts]

    def bare():
        with torch.no_grad():
            return [tuned.model.generate(input_ids=torch.tensor([s]), attention_mask=torch.ones(1, len(s), dtype=torch.long),
                                         max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                         pad_token_id=tuned.pad_id) for s in seqs]

    def ours():
        return [probe.diagnose(base, tuned, p, expected=job["expected"], force=job["force"],
                               base_prompt=p + job["base_suffix"], max_new_tokens=n) for p in prompts]

    res = common.compare({"limit": bare, "probe": ours}, repeats, budget)
    return [common.row(res["limit"], "limit", ["ids"], limit=True,
                 what=f"one model.generate per case (tuned, {n} tokens)"),
            common.row(res["probe"], "probe diagnose", FIELDS,
                 note="4 runs per case (tuned/base x free/forced) + expected scored under both")]


def sweep_workload(lm, job: dict, repeats: int, budget: float) -> list[dict]:
    try:
        from probe.sweeps import sweep
    except Exception as err:  # noqa: BLE001 - another part of probe, maybe not there yet
        return [dict(tool="probe sweep", fields=[], error=f"not available yet: {type(err).__name__}: {err}")]
    model, pad = lm.model, job["pad_id"]
    fns = {
        "limit": lambda: common.batched_limit(model, job["seqs"], pad, job["batches"], job["keeps"]),
        "probe": lambda: sweep(lm, job["template"], job["watch"], top_k=5, **job["slots"]),
    }
    res = common.compare(fns, repeats, budget)
    rows = []
    extra = {}
    if "error" not in res["limit"]:
        tokens, logprobs = _limit_logprobs(job, res["limit"]["result"])
        extra = dict(totals=[sum(lp) for lp in logprobs])
    rows.append(common.row(res["limit"], "limit", ["logits"], limit=True, **extra,
                     what=f"bare forward, same batches as probe ({len(job['batches'])} of <= "
                          f"{job['batch_size']}), target logits only"))
    out = {}
    if "error" not in res["probe"]:
        s = res["probe"]["result"]
        # Sweep rows follow itertools.product(relation, country): the order of job["pairs"].
        out = dict(totals=[r.logprob for r in s.rows])
    rows.append(common.row(res["probe"], "probe sweep", ["P(watch)", "rank", "top-5"], **out))
    return rows


def run(job: dict) -> dict:
    import probe

    common.setup_torch(job["threads"])
    repeats, budget = job["repeats"], job["budget_s"]
    out: dict = {"versions": dict(probe=probe.__version__, torch=torch.__version__,
                                  transformers=common.version("transformers"), peft=common.version("peft")),
                 "workloads": {}}
    todo = job["only"]
    if any(w in todo for w in ("W1", "W2", "W3", "W4")):
        lm = probe.load(job["model"])
        if "W1" in todo:
            out["workloads"]["W1"] = score_workload(lm, job["W1"], repeats, budget)
        if "W2" in todo:
            out["workloads"]["W2"] = generate_workload(lm, job["W2"], repeats, budget)
        if "W3" in todo:
            out["workloads"]["W3"] = diagnose_workload(lm, job["W3"], repeats, budget)
        if "W4" in todo:
            out["workloads"]["W4"] = sweep_workload(lm, job["W4"], repeats, budget)
        del lm
    if "W5" in todo:
        lm5 = probe.load(job["W5"]["model"])
        out["workloads"]["W5"] = score_workload(lm5, job["W5"], repeats, budget)
    return out


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        raise SystemExit(common.main(run))
    from bench.__main__ import main  # the old `python -m bench.core [options]`: the whole bench

    raise SystemExit(main(sys.argv[1:]))
