"""inseq, with its cheapest attribution method ("dummy": no attribution at all) and step
scores for the per-token fields.

    bench/.venvs/inseq/bin/python -m bench.peers.inseq JOB.json OUT.json

- W1: ``attribute(input_texts=prompts, generated_texts=prompt + target)`` (inseq finds the
  target by tokenizing the prompt alone); step score ``probability`` (``logprob=True``).
  Then with ``entropy`` and two step functions registered here: ``rank`` (sorting the
  vocabulary, as a user would write it) and top-5 ids (five step functions: a step score is
  one number per token).
- W2: ``attribute(input_texts=prompts, generation_args=greedy, max_new_tokens)``: inseq
  generates, decodes the text and tokenizes it again before scoring.
"""

from __future__ import annotations

from bench import common


def _register(inseq):
    import torch

    def logits_of(args):
        return args.attribution_model.output2logits(args.forward_output).float()

    def rank_fn(args, **_):
        logits = logits_of(args)
        order = logits.argsort(-1, descending=True)
        target = args.target_ids.reshape(-1, 1).to(logits.device)
        return ((order == target).nonzero()[:, 1] + 1).float()

    names = ["rank"]
    inseq.register_step_function(rank_fn, "rank", overwrite=True)
    for k in range(5):
        def top_fn(args, k=k, **_):
            return torch.topk(logits_of(args), 5, -1).indices[:, k].float()

        inseq.register_step_function(top_fn, f"top{k + 1}", overwrite=True)
        names.append(f"top{k + 1}")
    return names


def _collect(outs) -> dict:
    import math

    tokens, logprobs = [], []
    outs = outs if isinstance(outs, list) else [outs]
    for sa in (sa for out in outs for sa in out.sequence_attributions):
        lo, hi = sa.attr_pos_start, sa.attr_pos_end
        tokens.append([t.id for t in sa.target[lo:hi]])
        lp = sa.step_scores["probability"].tolist()
        logprobs.append([float(x) if x == x else -math.inf for x in lp])
    return dict(tokens=tokens, logprobs=logprobs)


def _rows(res, specs, what) -> list:
    rows = []
    for key, name, fields in specs:
        rec = res[key]
        if key == "limit":
            rows.append(common.row(rec, name, fields, what="bare forward / model.generate (this process)", limit=True))
            continue
        row = common.row(rec, name, fields, what=what)
        if "error" not in rec:
            row.update(_collect(rec["result"]))
        rows.append(row)
    return rows


def run(job: dict) -> dict:
    common.setup_torch(job["threads"], memory=job.get("mode") == "memory")
    import inseq

    out = {"versions": dict(inseq=common.version("inseq"), torch=common.version("torch"),
                            transformers=common.version("transformers"), captum=common.version("captum")),
           "workloads": {}}
    cfg, todo = common.settings(job), job["only"]
    model, tok = common.load_model(job["model"])
    attr = inseq.load_model(model, "dummy", tokenizer=tok)
    extra = _register(inseq)
    quiet = dict(show_progress=False, pretty_progress=False)
    all_scores = ["probability", "entropy"] + extra
    if "W1" in todo:
        j = job["W1"]
        prompts = j["rendered"]
        full = [p + t for p, (_, t) in zip(prompts, j["pairs"])]
        args = dict(input_texts=prompts, generated_texts=full, batch_size=j["batch_size"], logprob=True, **quiet)
        fns = {"limit": lambda: common.batched_limit(model, j["seqs"], j["pad_id"], j["batches"], j["keeps"]),
               "prob": lambda: attr.attribute(step_scores=["probability"], **args),
               "all": lambda: attr.attribute(step_scores=all_scores, **args)}
        specs = [("limit", "limit", ["logits"]),
                 ("prob", "inseq: dummy + probability", ["logprob"]),
                 ("all", "inseq: dummy + probability, entropy, rank, top-5", ["logprob", "rank", "entropy", "top-5"])]
        if not job.get("full", True):  # the default run: only the variant with probe's fields
            del fns["prob"]
            specs = [s for s in specs if s[0] != "prob"]
        res = common.compare(fns, **cfg)
        out["workloads"]["W1"] = _rows(res, specs, "attribute(generated_texts=prompt+target), method 'dummy'; "
                                       "rank and top-5 as step functions registered here")
    if "W2" in todo:
        j = job["W2"]
        gen = dict(max_new_tokens=j["new_tokens"], do_sample=False, pad_token_id=j["pad_id"], eos_token_id=j["eos"])
        args = dict(input_texts=j["rendered"], generation_args=gen, batch_size=j["batch_size"], logprob=True, **quiet)
        # With several prompts, inseq pads them as one batch, generates without the attention
        # mask and decodes with skip_special_tokens=True: a chat prompt then no longer matches
        # its own generation (inseq asserts). One attribute() call per prompt works.
        one = dict(args, batch_size=1)
        del one["input_texts"]

        def each(scores):
            return [attr.attribute(input_texts=p, step_scores=scores, **one) for p in j["rendered"]]

        fns = {"limit": lambda: common.bare_generate(model, j["seqs"], j["pad_id"], j["new_tokens"], j["eos"]),
               "default": lambda: attr.attribute(step_scores=["probability"], **args),
               "prob": lambda: each(["probability"]),
               "all": lambda: each(all_scores)}
        res = common.compare(fns, **cfg)
        out["workloads"]["W2"] = _rows(res, [
            ("limit", "limit", ["ids"]),
            ("default", f"inseq: dummy + probability, batch_size={j['batch_size']}", ["logprob"]),
            ("prob", "inseq: dummy + probability, one prompt per call", ["logprob"]),
            ("all", "inseq: dummy + probability, entropy, rank, top-5, one prompt per call",
             ["logprob", "rank", "entropy", "top-5"]),
        ], "attribute(generation_args=greedy): generates, decodes the text, tokenizes it again, scores")
    return out


if __name__ == "__main__":
    raise SystemExit(common.main(run))
