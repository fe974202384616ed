"""Core speed: probe vs the bare forward pass / bare ``model.generate``, in one process.

    python -m bench.core            # ~135M Llama-architecture model (SmolLM2-135M shape)
    python -m bench.core --size tiny --repeats 1   # seconds; what the test suite runs

(a) ``score_many`` over 64 prompt/target pairs (logprob, rank, entropy, top-5 per token) vs one
    bare batched forward over the same padded sequences (logits only).
(b) ``generate`` / ``generate_many`` of 32 tokens with per-token stats and top-5 vs
    ``model.generate`` without scores, greedy, same prompts.

Timings are medians of ``--repeats`` runs after one warm-up; ratios are what to read (absolute
times on a shared 2-core machine are noisy). Random weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import torch

import probe
from probe.forward import left_pad
from probe.prompts import encode, encode_prompt, render
from probe.tiny import bpe_tokenizer

SIZES = {
    # SmolLM2-135M's shape: 30 layers, hidden 576, 9 heads / 3 KV heads, vocab 49152.
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048,
                 tie_word_embeddings=True),
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024, max_position_embeddings=512,
                 tie_word_embeddings=True),
}

WORDS = ("the capital of France is Paris and Japan Tokyo what which country city river answer "
         "json list three colors red green blue question model token").split()


def build(size: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    tok = bpe_tokenizer()
    model = AutoModelForCausalLM.from_config(LlamaConfig(**SIZES[size])).eval()
    return probe.load((model, tok), name=f"random llama {size}")


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40)))
        target = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        pairs.append((prompt.capitalize(), target))
    return pairs


def timed(fn, repeats: int) -> tuple[float, object]:
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@torch.no_grad()
def bench_score(lm, n_pairs: int, repeats: int) -> dict:
    pairs = make_pairs(n_pairs)
    encoded = [encode(lm, render(lm, p), t) for p, t in pairs]
    ids, mask = left_pad([e.ids for e in encoded], lm.pad_id, lm.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)

    def bare():  # one batched forward over the same sequences: full logits, nothing else
        return lm.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits

    def ours():
        return probe.score_many(lm, pairs, top_k=5, progress=False)

    bare_s, logits = timed(bare, repeats)
    probe_s, traces = timed(ours, repeats)
    # Agreement: the bare recipe's log_softmax + gather at the same positions.
    logp = torch.log_softmax(logits.float(), -1)
    width = ids.shape[1]
    diff = 0.0
    for row, (enc, trace) in enumerate(zip(encoded, traces)):
        n = len(enc.ids) - enc.n_prompt
        for j, step in enumerate(trace.steps):
            p = width - n - 1 + j  # logits at p predict the token at p + 1
            diff = max(diff, abs(float(logp[row, p, step.id]) - step.logprob))
    tokens = sum(len(t) for t in traces)
    return dict(workload=f"score_many {n_pairs} pairs ({tokens} target tokens), top-5",
                baseline="bare batched forward", probe_s=probe_s, base_s=bare_s,
                ratio=probe_s / bare_s, max_abs_diff=diff)


@torch.no_grad()
def bench_generate(lm, n_prompts: int, new_tokens: int, repeats: int) -> dict:
    prompts = [p for p, _ in make_pairs(n_prompts, seed=1)]
    seqs = [encode_prompt(lm, render(lm, p)) for p in prompts]
    ids, mask = left_pad(seqs, lm.pad_id, lm.device)

    def bare():
        return lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=lm.pad_id)

    def ours():
        return probe.generate_many(lm, prompts, max_new_tokens=new_tokens, top_k=5,
                                   batch_size=n_prompts, progress=False)

    bare_s, out = timed(bare, repeats)
    probe_s, traces = timed(ours, repeats)
    same = sum(t.ids == out[i, ids.shape[1]:].tolist() for i, t in enumerate(traces))
    return dict(workload=f"generate {n_prompts} prompt(s) x {new_tokens} tokens, stats + top-5",
                baseline="model.generate, no scores", probe_s=probe_s, base_s=bare_s,
                ratio=probe_s / bare_s, max_abs_diff=float("nan"),
                note=f"{same}/{n_prompts} outputs identical to model.generate")


def lora_pair(lm, rank: int = 8):
    """(base, tuned) sharing one copy of ``lm``'s weights, with a random LoRA adapter."""
    import copy
    import tempfile

    from peft import LoraConfig, get_peft_model

    folder = tempfile.mkdtemp(prefix="probe-bench-lora-")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)
    get_peft_model(copy.deepcopy(lm.model), config).save_pretrained(folder)
    return probe.load_pair((copy.deepcopy(lm.model), lm.tokenizer), adapter=folder)


def bench_diagnose(lm, n_cases: int, new_tokens: int, repeats: int) -> dict:
    """diagnose on a LoRA pair (4 runs + expected scored under both) vs one plain generate
    of the tuned model per case, same length."""
    base, tuned = lora_pair(lm)
    prompts = [p for p, _ in make_pairs(n_cases, seed=2)]

    def bare():
        return [tuned.model.generate(input_ids=torch.tensor([encode_prompt(tuned, render(tuned, p))]),
                                     max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                     do_sample=False, pad_token_id=tuned.pad_id) for p in prompts]

    def ours():
        return [probe.diagnose(base, tuned, p, expected=" the capital", force=" json",
                               base_prompt=p + " The capital of", max_new_tokens=new_tokens)
                for p in prompts]

    bare_s, _ = timed(bare, repeats)
    probe_s, _ = timed(ours, repeats)
    return dict(workload=f"diagnose {n_cases} cases on a LoRA pair, 4 runs x {new_tokens} tokens "
                         "+ expected scored under both",
                baseline="one model.generate per case", probe_s=probe_s, base_s=bare_s,
                ratio=probe_s / bare_s, max_abs_diff=float("nan"))


def table(rows: list[dict]) -> str:
    lines = ["| workload | baseline | probe s | baseline s | ratio | max abs logprob diff | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['baseline']} | {r['probe_s']:.3f} | {r['base_s']:.3f} | "
                     f"**{r['ratio']:.2f}x** | {r['max_abs_diff']:.1e} | {r.get('note', '')} |")
    return "\n".join(lines)


WORKLOADS = ("score", "generate1", "generate", "diagnose")


def run(size: str = "135m", pairs: int = 64, prompts: int = 16, new_tokens: int = 32,
        repeats: int = 3, only: tuple[str, ...] = WORKLOADS) -> list[dict]:
    lm = build(size)
    jobs = {
        "score": lambda: bench_score(lm, pairs, repeats),
        "generate1": lambda: bench_generate(lm, 1, new_tokens, repeats),
        "generate": lambda: bench_generate(lm, prompts, new_tokens, repeats),
        "diagnose": lambda: bench_diagnose(lm, 4, new_tokens, repeats),
    }
    return [jobs[name]() for name in WORKLOADS if name in only]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="135m")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--write", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(args.size, args.pairs, args.prompts, args.new_tokens, args.repeats, tuple(args.only))
    head = (f"model: random llama {args.size} (SmolLM2-135M shape), fp32, {args.threads} threads, "
            f"median of {args.repeats} after a warm-up; torch {torch.__version__}")
    print(head)
    print(table(rows))
    if args.write:
        import platform
        from pathlib import Path

        Path(args.write).write_text(
            f"# probe core benchmark\n\n`python -m bench.core {' '.join(sys.argv[1:] if argv is None else argv)}`\n\n{head}; "
            f"{platform.processor() or platform.machine()}\n\n{table(rows)}\n\nRatios are probe's time "
            "over the baseline's, measured in the same process (lower is better).\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
