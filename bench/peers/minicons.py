"""minicons' ``scorer.IncrementalLMScorer``: what it offers per token is the logprob, and the
rank through ``compute_stats(rank=True)``; no entropy and no top-k per target token (its
``topk`` works on the next-token distribution after a whole text only).

    bench/.venvs/minicons/bin/python -m bench.peers.minicons JOB.json OUT.json

- ``conditional_score(prompts, targets, separator="", reduction=lambda x: x)``: per-token
  logprobs of the target (probe's batches, as lists);
- ``compute_stats(prime_text(prompts, targets, separator=""), rank=True)``: logprobs and ranks.

Which tokens minicons scores: it tokenizes prompt + target together and skips as many tokens
as the prompt alone has, *counting the tokens that are not the pad token*; the runner
reproduces that count to report the token ids (minicons returns scores only).
"""

from __future__ import annotations

from bench import common


def _scored_ids(tok, prompt: str, target: str) -> list[int]:
    """The ids minicons scores for (prompt, target), following its own bookkeeping."""
    pad = tok.pad_token_id
    ids = tok(prompt + target)["input_ids"]
    n_prefix = len([t for t in tok(prompt)["input_ids"] if t != pad]) - 1
    return ids[1:][n_prefix:]


def run(job: dict) -> dict:
    common.setup_torch(job["threads"], memory=job.get("mode") == "memory")
    from minicons import scorer

    out = {"versions": dict(minicons=common.version("minicons"), torch=common.version("torch"),
                            transformers=common.version("transformers")), "workloads": {}}
    cfg, todo = common.settings(job), job["only"]
    for w in ("W1", "W5"):
        if w not in todo:
            continue
        j = job[w]
        model, tok = common.load_model(j.get("model", job["model"]))
        lm = scorer.IncrementalLMScorer(model, device="cpu", tokenizer=tok)
        prompts = j["rendered"]
        targets = [t for _, t in j["pairs"]]

        def conditional():
            res = [None] * len(prompts)
            for b in j["batches"]:
                scores = lm.conditional_score([prompts[i] for i in b], [targets[i] for i in b],
                                              separator="", reduction=lambda x: x.tolist())
                for i, s in zip(b, scores):
                    res[i] = s
            return res

        def with_rank():
            res = [None] * len(prompts)
            for b in j["batches"]:
                primed = lm.prime_text([prompts[i] for i in b], [targets[i] for i in b], separator="")
                scores, ranks = lm.compute_stats(primed, rank=True)
                for i, s, r in zip(b, scores, ranks):
                    res[i] = (s, r)
            return res

        fns = {"limit": lambda: common.batched_limit(model, j["seqs"], j["pad_id"], j["batches"], j["keeps"]),
               "score": conditional, "rank": with_rank}
        res = common.compare(fns, **cfg)
        tokens = [_scored_ids(tok, p, t) for p, t in zip(prompts, targets)]
        rows = []
        for key, name, fields in (("limit", "limit", ["logits"]),
                                  ("score", "minicons: conditional_score", ["logprob"]),
                                  ("rank", "minicons: compute_stats(rank=True)", ["logprob", "rank"])):
            rec = res[key]
            if key == "limit":
                rows.append(common.row(rec, name, fields, what="bare forward (this process)", limit=True))
                continue
            row = common.row(rec, name, fields, what=f"probe's batches (<= {j['batch_size']} pairs), separator=''")
            if "error" not in rec and key == "score":
                row.update(tokens=tokens, logprobs=rec["result"])
            elif "error" not in rec:
                row.update(tokens=tokens, logprobs=[s for s, _ in rec["result"]], ranks=[r for _, r in rec["result"]])
            rows.append(row)
        out["workloads"][w] = rows
        del lm, model
    return out


if __name__ == "__main__":
    raise SystemExit(common.main(run))
