"""Measure each family's rounding: how far apart test_families.py's comparisons come out.

Not a test (pytest collects ``test_*.py`` only): the measurement behind ``ROUNDING`` and
``ROUNDING_OF`` in test_families.py. For each family and weight seed it builds a fresh tiny
model (the unigram tokenizer also trains differently on each build) and runs every comparison
of the families test, printing one JSON line per (family, seed) of the worst |difference| in
nats per comparison, then a table of the worst over the seeds:

    cd tests && PYTHONPATH=..:. OMP_NUM_THREADS=1 python engine/measure_rounding.py \\
        --seeds 0-5 --families qwen3_next,gemma4_text [--dtype float64]

Comparisons: brute (score vs one full forward per prefix), batch (score_many vs score),
gen (cached generation vs full forward), force (forced prefix vs score), lens (last layer vs
score), watch (watched string vs the product of full forwards; per token of the string),
diag (diagnose's batched runs vs each run alone).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import probe  # noqa: E402
import test_families as T  # noqa: E402
from assertions import PAIRS  # noqa: E402
from probe.engine.prompts import encode, render  # noqa: E402
from probe.models.tiny import WINDOW, save_tiny  # noqa: E402
from reference import full_ids, next_token_logits, stats  # noqa: E402


def _steps(out, key, step, ref):
    _max(out, key, abs(step.logprob - ref["logprob"]), abs(step.entropy - ref["entropy"]),
         *(abs(a.logprob - r) for a, r in zip(step.top, ref["top_logprobs"])))


def _max(out, key, *values):
    out[key] = max([out.get(key, 0.0), *values])


def _try(out, key, run):
    try:
        return run()
    except Exception:  # noqa: BLE001 - a refusal: nothing to compare
        out[f"{key}_refused"] = 1
        return None


def measure(arch, tok, chat, seed, dtype, tmp) -> dict:
    out: dict = {}
    folder = save_tiny(Path(tmp) / arch, arch, tok, chat=chat, seed=seed)
    lm = probe.load(folder, dtype=dtype)
    for prompt in (T.SHORT, T.LONG):  # test_score_matches_brute_force
        tr = probe.score(lm, prompt, T.TARGET, top_k=5)
        r = render(lm, prompt)
        ids = full_ids(lm, r.text, T.TARGET, add_special=not r.chat)
        prefix = ids[: len(ids) - len(tr.steps)] or [lm.tokenizer.bos_token_id]
        for i, s in enumerate(tr.steps):
            _steps(out, "brute", s, stats(next_token_logits(lm.model, prefix + tr.ids[:i]), s.id))
    pairs = PAIRS + [(T.LONG, T.TARGET), (T.SHORT, " Paris")]  # test_score_many_equals_one_by_one
    batched = _try(out, "batch", lambda: probe.score_many(lm, pairs, batch_size=4, progress=False))
    for (p, t), got in zip(pairs, batched or ()):
        for x, y in zip(got.steps, probe.score(lm, p, t).steps):
            _max(out, "batch", abs(x.logprob - y.logprob), abs(x.entropy - y.entropy))
    for prompt in (T.SHORT, T.LONG):  # test_greedy_equals_transformers_generate (every step)
        tr = _try(out, "gen", lambda: probe.generate(lm, prompt, max_new_tokens=3 * WINDOW))
        ids = T._prompt_ids(lm, prompt)
        for k, s in enumerate(tr.steps if tr else ()):
            _steps(out, "gen", s, stats(next_token_logits(lm.model, ids + tr.ids[:k]), s.id))
    tr = _try(out, "force", lambda: probe.generate(lm, T.LONG, max_new_tokens=2 * WINDOW, force=T.FORCE))
    if tr:
        for f, s in zip([s for s in tr.steps if s.forced], probe.score(lm, T.LONG, T.FORCE).steps):
            _max(out, "force", abs(f.logprob - s.logprob))
    lens = _try(out, "lens", lambda: probe.layers(lm, T.LONG, T.TARGET))
    if lens:
        for c, s in zip(lens.cells[-1], probe.score(lm, T.LONG, T.TARGET).steps):
            _max(out, "lens", abs(c.logprob - s.logprob))
    for prompt in (T.SHORT, T.LONG):  # test_multi_token_watch_is_the_exact_product (every step)
        tr = _try(out, "watch", lambda: probe.generate(lm, prompt, max_new_tokens=WINDOW + 2, watch=T.WATCH))
        rendered, ids = render(lm, prompt), T._prompt_ids(lm, prompt)
        for k, s in enumerate(tr.steps if tr else ()):
            for w in T.WATCH:
                wids, logp, ctx = encode(lm, rendered, w).answer_ids, 0.0, ids + tr.ids[:k]
                for t in wids:
                    logp += float(torch.log_softmax(next_token_logits(lm.model, ctx), -1)[t])
                    ctx = ctx + [t]
                _max(out, "watch", abs(math.log(s.watch[w]) - logp) / len(wids))
    _diagnose(out, folder, lm, dtype, tmp)
    return out


def _diagnose(out, folder, lm, dtype, tmp):  # test_lora_pair_through_diagnose
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(1)
    cfg = LoraConfig(r=4, lora_alpha=32, target_modules=T.lora_targets(model), init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(Path(tmp) / "lora")
    base, tuned = probe.load_pair(folder, adapter=Path(tmp) / "lora", dtype=dtype)
    n = WINDOW + 4
    d = _try(out, "diag", lambda: probe.diagnose(base, tuned, T.LONG, expected=" Rome", force=" Rome",
                                                  max_new_tokens=n))
    if d is None:
        return
    for name, side, force in [("tuned", tuned, None), ("tuned_forced", tuned, " Rome"),
                              ("base", base, None), ("base_forced", base, " Rome")]:
        alone = probe.generate(side, T.LONG, max_new_tokens=n, **({"force": force} if force else {}))
        if d.run(name).trace.ids != alone.ids:
            out["diag_ids_differ"] = 1
        for x, y in zip(d.run(name).trace.steps, alone.steps):
            _max(out, "diag", abs(x.logprob - y.logprob))


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-3", help="weight seeds, a range: 0-5")
    ap.add_argument("--families", default="", help="comma-separated (default: all of FAMILIES)")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    names = set(filter(None, args.families.split(",")))
    worst: dict = {}
    for arch, tok, chat in T.FAMILIES:
        if names and arch not in names:
            continue
        for seed in _seeds(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                row = measure(arch, tok, chat, seed, args.dtype, tmp)
            print(json.dumps({"family": arch, "seed": seed, **row}), flush=True)
            for k, v in row.items():
                worst.setdefault(arch, {})[k] = max(worst.get(arch, {}).get(k, 0), v)
    keys = ["brute", "batch", "gen", "force", "lens", "watch", "diag"]
    print("family".ljust(18) + "".join(k.rjust(10) for k in keys) + "   worst")
    for arch, row in worst.items():
        cells = "".join(("%.1e" % row[k] if k in row else "refused").rjust(10) for k in keys)
        print(arch.ljust(18) + cells + "   %.1e" % max(row.get(k, 0) for k in keys))


if __name__ == "__main__":
    main()
