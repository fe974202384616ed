"""The plain transformers recipes, as people write them (torch + transformers, nothing else).

    python -m bench.peers.plain JOB.json OUT.json

Scoring (W1, W5): the prompt is tokenized alone to find where the target starts, then
prompt + target together (so a token that merges across the boundary is scored from the
wrong position); log_softmax over the whole vocabulary at every position.
- one pair at a time: forward, log_softmax, gather;
- batched (probe's batches, right padding + attention mask): the same on the padded batch;
- batched + rank (sorting the vocabulary), entropy and top-5 at the target positions.
Generation (W2): ``generate(output_scores=True, return_dict_in_generate=True)`` +
``compute_transition_scores(normalize_logits=True)``; then the same plus rank (sort),
entropy and top-5 from the step scores.
"""

from __future__ import annotations

from bench import common


def _positions(tok, prompt: str, target: str):
    ids = tok(prompt + target)["input_ids"]
    n_prompt = len(tok(prompt)["input_ids"])
    return ids, n_prompt


def one_by_one(model, tok, pairs):
    import torch

    out = []
    for prompt, target in pairs:
        ids, n_prompt = _positions(tok, prompt, target)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0]
        logp = torch.log_softmax(logits[:-1].float(), -1)
        targets = torch.tensor(ids[n_prompt:])
        out.append((ids[n_prompt:], logp[n_prompt - 1:].gather(1, targets[:, None])[:, 0].tolist()))
    return out


def batched(model, tok, pairs, batches, stats: bool):
    import torch

    out = [None] * len(pairs)
    for batch in batches:
        texts = [pairs[i][0] + pairs[i][1] for i in batch]
        n_prompts = [len(tok(pairs[i][0])["input_ids"]) for i in batch]
        enc = tok(texts, return_tensors="pt", padding=True, padding_side="right")
        with torch.no_grad():
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        logp = torch.log_softmax(logits.float(), -1)  # (batch, seq, vocab)
        for r, i in enumerate(batch):
            length = int(enc["attention_mask"][r].sum())
            targets = enc["input_ids"][r, n_prompts[r]:length]
            rows = logp[r, n_prompts[r] - 1: length - 1]
            lp = rows.gather(1, targets[:, None])[:, 0]
            rec = {"tokens": targets.tolist(), "logprobs": lp.tolist()}
            if stats:
                order = rows.argsort(-1, descending=True)
                rec["rank"] = ((order == targets[:, None]).nonzero()[:, 1] + 1).tolist()
                rec["entropy"] = common.entropy(rows).tolist()
                rec["top5"] = rows.topk(5, -1).indices.tolist()
            out[i] = rec
    return out


def generate(model, tok, prompts, new_tokens: int, eos, stats: bool):
    import torch

    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, output_scores=True,
                             return_dict_in_generate=True, pad_token_id=pad, eos_token_id=eos)
        lp = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    width = enc["input_ids"].shape[1]
    res = {"tokens": [common.until_eos(row[width:].tolist(), eos) for row in out.sequences]}
    res["logprobs"] = [lp[b, : len(t)].tolist() for b, t in enumerate(res["tokens"])]
    if stats:
        logp = torch.log_softmax(torch.stack(out.scores, 1).float(), -1)  # (batch, steps, vocab)
        chosen = out.sequences[:, width:]
        order = logp.argsort(-1, descending=True)
        res["rank"] = ((order == chosen[..., None]).nonzero()[:, -1] + 1).reshape(chosen.shape).tolist()
        res["entropy"] = common.entropy(logp).tolist()
        res["top5"] = logp.topk(5, -1).indices.tolist()
    return res


def score_workload(model, tok, job, cfg, loop: bool) -> list:
    pairs = [(p, t) for p, (_, t) in zip(job["rendered"], job["pairs"])]
    fns = {"limit": lambda: common.batched_limit(model, job["seqs"], job["pad_id"], job["batches"], job["keeps"])}
    if loop:
        fns["loop"] = lambda: one_by_one(model, tok, pairs)
    fns["batched"] = lambda: batched(model, tok, pairs, job["batches"], stats=False)
    fns["stats"] = lambda: batched(model, tok, pairs, job["batches"], stats=True)
    res = common.compare(fns, **cfg)
    rows = [common.row(res["limit"], "limit", ["logits"], what="bare forward (this process)", limit=True)]
    if loop:
        row = common.row(res["loop"], "transformers: one pair at a time", ["logprob"],
                         what="forward + log_softmax + gather per pair")
        if "error" not in res["loop"]:
            row.update(tokens=[t for t, _ in res["loop"]["result"]], logprobs=[lp for _, lp in res["loop"]["result"]])
        rows.append(row)
    for key, name, fields in (("batched", "transformers: batched", ["logprob"]),
                              ("stats", "transformers: batched + naive stats", ["logprob", "rank", "entropy", "top-5"])):
        row = common.row(res[key], name, fields, what=f"{job['batch_size']} per batch, right padding, full "
                         "log_softmax" + (", rank by sorting the vocabulary, topk" if key == "stats" else ""))
        if "error" not in res[key]:
            recs = res[key]["result"]
            row.update(tokens=[r["tokens"] for r in recs], logprobs=[r["logprobs"] for r in recs])
            if key == "stats":
                row["ranks"] = [r["rank"] for r in recs]
        rows.append(row)
    return rows


def generate_workload(model, tok, job, cfg) -> list:
    n, eos = job["new_tokens"], job["eos"]
    prompts = job["rendered"]
    fns = {"limit": lambda: common.bare_generate(model, job["seqs"], job["pad_id"], n, eos),
           "scores": lambda: generate(model, tok, prompts, n, eos, stats=False),
           "stats": lambda: generate(model, tok, prompts, n, eos, stats=True)}
    res = common.compare(fns, **cfg)
    rows = [common.row(res["limit"], "limit", ["ids"], what="model.generate (this process)", limit=True)]
    for key, name, fields in (("scores", "transformers: generate + compute_transition_scores", ["logprob"]),
                              ("stats", "transformers: generate + naive stats", ["logprob", "rank", "entropy", "top-5"])):
        row = common.row(res[key], name, fields, what="output_scores=True, one batch")
        if "error" not in res[key]:
            row.update(tokens=res[key]["result"]["tokens"], logprobs=res[key]["result"]["logprobs"])
        rows.append(row)
    return rows


def run(job: dict) -> dict:
    common.setup_torch(job["threads"], memory=job.get("mode") == "memory")
    out = {"versions": dict(torch=common.version("torch"), transformers=common.version("transformers")),
           "workloads": {}}
    cfg, todo = common.settings(job), job["only"]
    if any(w in todo for w in ("W1", "W2")):
        model, tok = common.load_model(job["model"])
        if "W1" in todo:
            out["workloads"]["W1"] = score_workload(model, tok, job["W1"], cfg, loop=True)
        if "W2" in todo:
            out["workloads"]["W2"] = generate_workload(model, tok, job["W2"], cfg)
        del model
    if "W5" in todo:
        model, tok = common.load_model(job["W5"]["model"])
        out["workloads"]["W5"] = score_workload(model, tok, job["W5"], cfg, loop=False)
    return out


if __name__ == "__main__":
    raise SystemExit(common.main(run))
