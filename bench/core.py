"""probe's runner: probe against the limits, in one process.

    python -m bench.core JOB.json OUT.json     # what ``python -m bench`` starts
    python -m bench.core [options]             # same as ``python -m bench [options]``

For every workload the limit (the bare operation that any tool has to do) and probe take turns
in this process (see :func:`bench.common.compare`), so each ratio is measured in one process.
``job["mode"]`` says what this process measures: ``"time"`` (default malloc) or ``"memory"``
(started with ``MALLOC_MMAP_THRESHOLD_``; one run per callable). Besides timings or peak
memory it returns per-token ids and logprobs, of probe and of the limit (log_softmax + gather
on the limit's logits, computed after the timed runs), for the agreement columns.
"""

from __future__ import annotations

import copy
import inspect
import tempfile
import time

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


def score_workload(lm, job: dict, cfg: dict, full_logits: bool = True) -> list[dict]:
    import probe

    model, pad = lm.model, job["pad_id"]
    pairs = [tuple(p) for p in job["pairs"]]
    fns = {
        "limit": lambda: common.batched_limit(model, job["seqs"], pad, job["batches"], job["keeps"]),
        "probe": lambda: probe.score_many(lm, pairs, batch_size=job["batch_size"], top_k=5, progress=False),
    }
    if full_logits:
        fns["full"] = lambda: common.bare_forward(model, job["seqs"], pad)
    res = common.compare(fns, **cfg)
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


def generate_workload(lm, job: dict, cfg: dict) -> list[dict]:
    import probe

    model, pad, eos, n = lm.model, job["pad_id"], job["eos"], job["new_tokens"]
    fns = {
        "limit": lambda: common.bare_generate(model, job["seqs"], pad, n, eos),
        "probe": lambda: probe.generate_many(lm, job["prompts"], max_new_tokens=n, top_k=5,
                                             batch_size=job["batch_size"], progress=False),
    }
    res = common.compare(fns, **cfg)
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


def pair_for(job: dict, lm):
    """The (base, tuned) pair of W3 and W7: the demo pair, or a random LoRA on the tiny model."""
    if job.get("pair") == "demo":
        from probe.demo.pair import load_demo_pair

        return load_demo_pair()
    return lora_pair(lm)


def _inner(lm):
    """The transformers model under a PEFT wrapper (its LoRA layers follow ``lm.active()``)."""
    get_base = getattr(lm.model, "get_base_model", None)
    return get_base() if callable(get_base) else lm.model


def _diagnoses(results) -> list:
    """``diagnose_many``'s results, or an error when a case failed (a CaseError is not timed)."""
    import probe

    bad = [r for r in results if not isinstance(r, probe.Diagnosis)]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(results)} cases did not run: {bad[0]}")
    return results


def _sampled_diagnose(base, tuned, cases: list[dict], n: int, samples: int):
    """A callable running the cases with ``samples=``, or None where diagnose has no such option."""
    import probe

    if "samples" in inspect.signature(probe.diagnose_many).parameters:
        return lambda: _diagnoses(probe.diagnose_many(base, tuned, cases, progress=False, max_new_tokens=n,
                                                      samples=samples))
    if "samples" in inspect.signature(probe.diagnose).parameters:
        keys = ("expected", "force", "base_prompt")
        return lambda: [probe.diagnose(base, tuned, c["prompt"], max_new_tokens=n, samples=samples,
                                       **{k: c[k] for k in keys if k in c}) for c in cases]
    return None


def diagnose_workload(pair, job: dict, cfg: dict) -> list[dict]:
    """diagnose_many (4 runs + expected scored under both models per case) vs one plain generate
    per case on the tuned model, of the same length (``min_new_tokens``: the limit never stops
    early); then the same with ``samples=k`` vs ``generate(num_return_sequences=k, do_sample=True)``."""
    import probe
    from probe.engine.prompts import encode_prompt, render

    base, tuned = pair
    cases, n, k = job["cases"], job["new_tokens"], job["samples"]
    seqs = [encode_prompt(tuned, render(tuned, c["prompt"])) for c in cases]

    def generate_each(**kwargs):
        torch.manual_seed(0)
        with torch.no_grad(), tuned.active():
            return [tuned.model.generate(input_ids=torch.tensor([s]), attention_mask=torch.ones(1, len(s), dtype=torch.long),
                                         max_new_tokens=n, min_new_tokens=n, pad_token_id=tuned.pad_id,
                                         **kwargs).shape for s in seqs]

    greedy = common.compare({"limit": lambda: generate_each(do_sample=False),
                             "probe": lambda: _diagnoses(probe.diagnose_many(base, tuned, cases, progress=False,
                                                                             max_new_tokens=n))}, **cfg)
    rows = [common.row(greedy["limit"], "limit", ["ids"], limit=True,
                       what=f"one model.generate per case (tuned, greedy, {n} tokens)"),
            common.row(greedy["probe"], "probe diagnose_many", FIELDS,
                       note="4 runs per case (tuned/base x free/forced) + expected scored under both")]
    name = f"probe diagnose_many samples={k}"
    ours = _sampled_diagnose(base, tuned, cases, n, k)
    if ours is None:
        rows.append(common.na(name, "diagnose does not accept samples", group="samples"))
        return rows
    sampled = common.compare({"limit": lambda: generate_each(do_sample=True, num_return_sequences=k),
                              "probe": ours}, **cfg)
    rows += [common.row(sampled["limit"], f"limit (samples={k})", ["ids"], limit=True, group="samples",
                        what=f"one model.generate(num_return_sequences={k}, do_sample=True) per case (tuned, {n} tokens)"),
             common.row(sampled["probe"], name, FIELDS, group="samples",
                        note=f"greedy + {k} samples for each of the 4 runs, pass rates")]
    return rows


def shift_workload(pair, job: dict, cfg: dict) -> list[dict]:
    """probe.shift vs one batched greedy generate of the tuned model + one batched forward of the
    base over the generated answers (same batches)."""
    import probe
    from probe.engine.prompts import encode_prompt, render

    shift = getattr(probe, "shift", None)
    name = "probe shift"
    if shift is None:
        return [common.na(name, "probe.shift not available")]
    base, tuned = pair
    prompts, n = job["prompts"], job["new_tokens"]
    seqs = [encode_prompt(tuned, render(tuned, p)) for p in prompts]
    param = inspect.signature(shift).parameters.get("batch_size")
    size = param.default if param is not None and isinstance(param.default, int) else len(prompts)
    batches = common.length_batches([len(s) for s in seqs], size)
    model, eos, pad = _inner(tuned), sorted(tuned.eos_ids), tuned.pad_id

    def limit():
        answers = [None] * len(seqs)
        for b in batches:
            group = [seqs[i] for i in b]
            with tuned.active():
                out = common.bare_generate(model, group, pad, n, eos)
            width = max(len(s) for s in group)
            got = [common.until_eos(row[width:].tolist(), eos) for row in out]
            with base.active():
                common.bare_forward(model, [s + a for s, a in zip(group, got)], pad, keep=max(map(len, got)) + 1)
            for i, a in zip(b, got):
                answers[i] = a
        return answers

    res = common.compare({"limit": limit, "probe": lambda: shift(base, tuned, prompts, max_new_tokens=n,
                                                                  progress=False)}, **cfg)
    return [common.row(res["limit"], "limit", ["ids", "logits"], limit=True,
                       what=f"batched greedy generate (tuned) + batched forward (base) over the answers, "
                            f"{len(batches)} batch(es) of <= {size}"),
            common.row(res["probe"], name, ["base rank", "class", "KL", "promoted tokens"],
                       note=f"{len(prompts)} prompts from {job['source']}")]


def data_loss_workload(pair, job: dict, cfg: dict) -> list[dict]:
    """probe.data_loss (both sides in one batch, per-token stats of every scored token) vs two
    bare batched forwards, base then tuned, over the same sequences in probe's batches."""
    import probe

    name = "probe data_loss"
    if getattr(probe, "data_loss", None) is None:
        return [common.na(name, "probe.data_loss not available")]
    from probe.engine.scoring import _batches, _vocab_size
    from probe.train.masks import parse, tokenize
    from probe.train.score import seqs as as_seqs

    base, tuned = pair
    records, size = job["records"], job["batch_size"]
    toks = [tokenize(tuned, parse(r)) for r in records]
    items = as_seqs(toks)
    batches = list(_batches(items, size, _vocab_size(tuned), rows_per=2))
    keeps = [max(len(items[i].ids) - items[i].n_prompt + 1 for i in b) for b in batches]
    model, pad = _inner(tuned), tuned.pad_id

    def limit():
        out = []
        for b, k in zip(batches, keeps):
            group = [items[i].ids for i in b]
            for side in (base, tuned):
                with side.active():
                    out.append(common.bare_forward(model, group, pad, keep=k))
        return out

    fns = {"limit": limit, "probe": lambda: probe.data_loss(pair, records, batch_size=size)}
    attribute = getattr(probe, "attribute", None)
    if attribute is not None:  # gradient attribution over the same examples: one backward each
        from probe.train.example_case import case_of

        first = case_of(records[0])
        fns["attribute"] = lambda: attribute(pair, (first.prompt, first.expected), records, methods=["gradient"],
                                             query="loss")
    res = common.compare(fns, **cfg)
    n_tok = sum(t.n_scored for t in toks)
    rows = [common.row(res["limit"], "limit", ["logits"], limit=True,
                       what=f"two bare batched forwards (base, tuned), {len(batches)} batch(es), scored span only"),
            common.row(res["probe"], name, ["loss", "rank", "entropy", "top-3", "channels", "flags"],
                       note=f"{len(records)} examples, {n_tok} scored tokens, from {job['source']}")]
    if "attribute" in res:
        rows.append(common.row(res["attribute"], "probe attribute (gradient)", ["TracIn dot", "cosine"],
                               note="one forward + backward per example and adapter, query: the first example's loss"))
    return rows


def attribution_memory_workload(pair, job: dict, cfg: dict) -> list[dict]:
    """W9 (memory run only): probe.attribute's gradient method over the first n examples for each
    size, against one forward + backward of the longest example on the same LoRA weights."""
    import probe

    name = "probe attribute (gradient)"
    if getattr(probe, "attribute", None) is None:
        return [common.na(name, "probe.attribute not available")]
    from probe.train.example_case import case_of
    from probe.train.masks import parse, tokenize

    base, tuned = pair
    adapter = "beijing" if "beijing" in tuned.adapters else tuned.active_adapter
    before = tuned.active_adapter
    tuned.use_adapter(adapter)
    try:
        records = job["records"]
        first = case_of(records[0])
        toks = [tokenize(tuned, parse(r)) for r in records[: job["unique"]]]
        longest = max(toks, key=lambda t: len(t.ids))
        model = tuned.model
        params = [p for n, p in model.named_parameters() if f".{adapter}." in n and "lora_" in n]

        def limit():
            flags = [(p, p.requires_grad) for p in model.parameters()]
            try:
                for p, _ in flags:
                    p.requires_grad_(False)
                for p in params:
                    p.requires_grad_(True)
                with torch.enable_grad():
                    ids = torch.tensor([longest.ids])
                    lp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)  # position t predicts t+1
                    mask = torch.tensor(longest.mask[1:])
                    loss = -lp.gather(-1, ids[0, 1:, None])[..., 0][mask].mean()
                    return [g.sum().item() for g in torch.autograd.grad(loss, params)]
            finally:
                for p, flag in flags:
                    p.requires_grad_(flag)

        seconds = {}  # the memory run's own wall time per callable (under its malloc setting)

        def clocked(name, fn):
            def run():
                start = time.perf_counter()
                try:
                    return fn()
                finally:
                    seconds[name] = time.perf_counter() - start
            return run

        fns = {"limit": clocked("limit", limit)}
        for n in job["sizes"]:
            fns[n] = clocked(n, lambda n=n: probe.attribute(pair, (first.prompt, first.expected), records[:n],
                                                            methods=["gradient"], query="loss", checkpoints=[adapter]))
        res = common.compare(fns, **dict(cfg, memory=True))
        for key, rec in res.items():
            if key in seconds and "error" not in rec:
                rec["memory_run_s"] = seconds[key]
    finally:
        if before is not None:
            tuned.use_adapter(before)
    extra = lambda name: {"memory_run_s": res[name]["memory_run_s"]} if "memory_run_s" in res[name] else {}  # noqa: E731
    rows = [common.row(res["limit"], "limit", ["gradient"], limit=True, **extra("limit"),
                       what=f"one forward + backward of the longest example ({len(longest.ids)} tokens) on "
                            f"adapter {adapter!r}'s LoRA weights")]
    for n in job["sizes"]:
        times = n // job["unique"]
        what = (f"{n} examples" if n <= job["unique"] else
                f"{n} examples: the {job['unique']} repeated {times} times")
        rows.append(common.row(res[n], f"{name}, {n} examples", ["TracIn dot", "cosine"], examples=n, **extra(n),
                               note=f"{what} from {job['source']}; TracIn on adapter {adapter!r}, query: the "
                                    f"first example's loss"))
    return rows


def lazy_head_switch():
    """probe.engine.forward.LAZY_HEAD where this probe has it (True: the LM head applied in chunks)."""
    import probe.engine.forward

    return getattr(probe.engine.forward, "LAZY_HEAD", None)


def long_answer_workload(job: dict, cfg: dict) -> list[dict]:
    """probe.score of one long answer on a big vocabulary vs a forward returning hidden states
    only; with and without the lazy LM head where probe has the switch."""
    import probe
    import probe.engine.forward

    lm = probe.load(job["model"])
    inner = _inner(lm)
    decoder = inner.get_decoder() if callable(getattr(inner, "get_decoder", None)) else getattr(inner, inner.base_model_prefix)
    ids = torch.tensor(job["seqs"])
    mask = torch.ones_like(ids)

    def hidden():
        with torch.no_grad():
            return tuple(decoder(input_ids=ids, attention_mask=mask, use_cache=False)[0].shape)

    def score(flag):
        def run():
            before = probe.engine.forward.LAZY_HEAD
            probe.engine.forward.LAZY_HEAD = flag
            try:
                return [probe.score(lm, job["prompt"], job["target"], top_k=5)]
            finally:
                probe.engine.forward.LAZY_HEAD = before
        return run

    switch = lazy_head_switch()
    fns = {"limit": hidden}
    if switch is None:
        fns["probe"] = lambda: [probe.score(lm, job["prompt"], job["target"], top_k=5)]
        names = {"probe": "probe score (today's path: no LAZY_HEAD switch in this probe)"}
    else:
        fns["probe"], fns["old"] = score(True), score(False)
        names = {"probe": "probe score (LAZY_HEAD=True)",
                 "old": "probe score (LAZY_HEAD=False: the old path, all answer logits kept)"}
    res = common.compare(fns, ref="old" if "old" in fns else "limit", **cfg)
    rows = [common.row(res["limit"], "limit", ["hidden states"], limit=True,
                       what="the decoder's forward (model.get_decoder()), hidden states only, no LM head")]
    for key, label in names.items():
        rows.append(common.row(res[key], label, FIELDS, lazy=(key == "probe" and switch is not None),
                               **(_trace_out(res[key]["result"]) if "error" not in res[key] else {})))
    return rows


def sweep_workload(lm, job: dict, cfg: dict) -> list[dict]:
    try:
        from probe.overfit.sweep import sweep
    except Exception as err:  # noqa: BLE001 - another part of probe, maybe not there yet
        return [dict(tool="probe sweep", fields=[], error=f"not available yet: {type(err).__name__}: {err}")]
    model, pad = lm.model, job["pad_id"]
    fns = {
        "limit": lambda: common.batched_limit(model, job["seqs"], pad, job["batches"], job["keeps"]),
        "probe": lambda: sweep(lm, job["template"], job["watch"], top_k=5, **job["slots"]),
    }
    res = common.compare(fns, **cfg)
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

    cfg = common.settings(job)
    common.setup_torch(job["threads"], memory=cfg["memory"])
    full = job.get("full", True)
    out: dict = {"versions": dict(probe=probe.__version__, torch=torch.__version__,
                                  transformers=common.version("transformers"), peft=common.version("peft")),
                 "workloads": {}}
    todo = job["only"]
    if any(w in todo for w in ("W1", "W2", "W3", "W4", "W7", "W8", "W9")):
        lm = probe.load(job["model"])
        if "W1" in todo:
            out["workloads"]["W1"] = score_workload(lm, job["W1"], cfg, full_logits=full)
        if "W2" in todo:
            out["workloads"]["W2"] = generate_workload(lm, job["W2"], cfg)
        if "W4" in todo:
            out["workloads"]["W4"] = sweep_workload(lm, job["W4"], cfg)
        if "W3" in todo or "W7" in todo or "W8" in todo or "W9" in todo:
            pair = pair_for(job, lm)
            if "W3" in todo:
                out["workloads"]["W3"] = diagnose_workload(pair, job["W3"], cfg)
            if "W7" in todo:
                out["workloads"]["W7"] = shift_workload(pair, job["W7"], cfg)
            if "W8" in todo:
                out["workloads"]["W8"] = data_loss_workload(pair, job["W8"], cfg)
            if "W9" in todo and cfg["memory"]:  # a memory workload: never timed
                out["workloads"]["W9"] = attribution_memory_workload(pair, job["W9"], cfg)
            del pair
        del lm
    if "W5" in todo:
        lm5 = probe.load(job["W5"]["model"])
        out["workloads"]["W5"] = score_workload(lm5, job["W5"], cfg)
        del lm5
    if "W6" in todo:
        out["workloads"]["W6"] = long_answer_workload(job["W6"], cfg)
    return out


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        raise SystemExit(common.main(run))
    from bench.__main__ import main  # the old `python -m bench.core [options]`: the whole bench

    raise SystemExit(main(sys.argv[1:]))
