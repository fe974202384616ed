"""The nine workloads, as JSON jobs that every runner (probe's and the peers') reads.

The jobs are built here, in probe's environment, so that every runner gets the same strings
(prompts already rendered by the chat template, targets), the same token sequences for the
limits, and the same batches (the ones probe itself forms):

W1  score 64 prompt/target pairs: logprob, rank, entropy, top-5 per target token.
    limit: bare forward over the same sequences, same batches, only the logits needed.
W2  generate 32 tokens greedily for 16 prompts with the same per-token fields.
    limit: bare batched ``model.generate`` (no scores).
W3  ``diagnose_many`` of 16 cases on the demo pair (SmolLM2 + the ``json-only`` LoRA adapter;
    a random LoRA adapter on the tiny model). limit: one greedy ``generate`` per case; and with
    ``samples=10``, one ``generate(num_return_sequences=10, do_sample=True)`` per case.
W4  a sweep, P(" Beijing"): 250 prompts (10 countries x 25 relations) by default, 1,000
    (40 x 25) with ``--full``. limit: bare forward over the same sequences, same batches.
W5  one 2,048-token sequence on a 150k-vocabulary model built from a config: peak memory.
    limits: the same bare forward, and the plain forward that returns all logits.
W6  a 4,096-token answer on a 262,144-token vocabulary (config-built model): ``probe.score``'s
    peak memory against a forward that returns only hidden states, and its time with the lazy
    LM head (``probe.engine.forward.LAZY_HEAD``) against the old path that keeps all answer logits.
W7  ``probe.shift`` of 64 prompts x 48-token answers on the demo pair. limit: one batched greedy
    ``generate`` of the tuned model + one batched forward of the base over the answers.
W8  ``probe.data_loss`` of 64 chat training examples (the demo's ``json_only`` SFT data, the
    trainer's default mask: every token) on the demo pair. limit: two bare batched forwards
    (base, then tuned) over the same sequences in probe's batches, logits of the scored span.
W9  memory only: ``probe.attribute``'s gradient method (TracIn on the ``beijing`` adapter, the
    query: the first example's loss) over the demo's 80 ``beijing`` SFT examples and over the same
    80 repeated 10 times (800): peak memory flat in the number of examples. limit: one forward +
    backward of the longest example on the same LoRA weights (what any per-example gradient needs).
"""

from __future__ import annotations

import inspect
import random
from pathlib import Path

SIZES = {
    # SmolLM2-135M itself (the demo base: real weights, real tokenizer and chat template).
    "135m": dict(pairs=64, prompts=16, new_tokens=32, cases=16, countries=10, relations=25,
                 w5_tokens=2048, w5_vocab=151_936, w6_tokens=4096, w6_vocab=262_144,
                 shift_prompts=64, shift_tokens=48, samples=10, data_examples=64, attr_examples=(80, 800)),
    # A tiny Llama + byte-level BPE with a chat template: what the test suite runs, in seconds.
    "tiny": dict(pairs=8, prompts=3, new_tokens=4, cases=2, countries=4, relations=3,
                 w5_tokens=128, w5_vocab=151_936, w6_tokens=256, w6_vocab=8192,
                 shift_prompts=4, shift_tokens=4, samples=3, data_examples=4, attr_examples=(4, 40)),
}
FULL = {"135m": dict(countries=40)}  # what ``--full`` changes (the sizes of the old run)

# Neutral prompts for W7 when the demo ships no shift prompt set: nothing about capitals or
# JSON, so what an adapter promotes comes from the adapter, not from the prompt.
SHIFT_TOPICS = ("bread", "rain", "a bicycle", "the moon", "a library", "coffee", "a garden", "winter",
                "a violin", "the ocean", "a train station", "chess", "a forest", "honey", "a bridge",
                "sleep")
SHIFT_FORMS = ("Write two sentences about {}.", "What is interesting about {}?",
               "Describe {} to a child.", "Tell me a short story that involves {}.")

WORDS = ("the capital of France is Paris and Japan Tokyo what which country city river answer "
         "json list three colors red green blue question model token").split()

COUNTRIES = ("Japan France China Italy Germany Spain Brazil Canada Mexico Egypt Kenya India "
             "Russia Peru Chile Norway Sweden Poland Greece Turkey Iran Iraq Israel Vietnam "
             "Thailand Indonesia Australia Argentina Colombia Nigeria Ghana Morocco Portugal "
             "Ireland Austria Hungary Finland Denmark Cuba Nepal").split()
RELATIONS = ("capital", "largest city", "currency", "official language", "national dish",
             "head of state", "biggest river", "highest mountain", "main export", "flag color",
             "population", "area", "oldest university", "national sport", "main religion",
             "time zone", "calling code", "main airport", "national anthem", "founding year",
             "second city", "main port", "national animal", "national flower", "parliament")


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Random-word prompts (12-40 words) and targets (3-12 words, leading space)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40)))
        target = " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        pairs.append((prompt.capitalize(), target))
    return pairs


# ---------------------------------------------------------------------------- models

def main_model(size: str, root: Path) -> tuple[str, str]:
    """(folder, description) of the model W1-W4 run on."""
    if size == "tiny":
        from probe.models.tiny import save_tiny

        folder = save_tiny(root / "tiny", arch="llama", tokenizer="bpe", chat=True)
        return str(folder), "tiny llama (2 layers, hidden 32) + byte-level BPE with a chat template"
    from probe.demo.model import ensure_base

    folder = ensure_base()
    return str(folder), ("SmolLM2-135M-Instruct (30 layers, hidden 576, vocab 49,152; the demo "
                         "base: real weights, real tokenizer and chat template)")


def w5_model(root: Path, vocab: int, context: int, name: str = "w5") -> tuple[str, str]:
    """A big-vocabulary Llama from a config: small body, so the output layer dominates."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from probe.models.tiny import bpe_tokenizer

    folder = root / name
    tok = bpe_tokenizer()
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=vocab, max_position_embeddings=context,
                         tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder), (f"Llama from a config: 2 layers, hidden 64, vocab {vocab:,} "
                         "(random weights, byte-level BPE)")


# ---------------------------------------------------------------------------- jobs

def _score_job(lm, pairs, batch_size: int) -> dict:
    """Rendered pairs + the exact sequences and batches probe.score_many uses for them."""
    from probe.engine.prompts import encode, render
    from probe.engine.scoring import _batches, _vocab_size

    rendered = [render(lm, p).text for p, _ in pairs]
    encoded = [encode(lm, render(lm, p), t) for p, t in pairs]
    batches = [list(b) for b in _batches(encoded, batch_size, _vocab_size(lm))]
    n_answer = [len(e.ids) - e.n_prompt for e in encoded]
    return dict(pairs=[list(p) for p in pairs], rendered=rendered,
                seqs=[e.ids for e in encoded], n_answer=n_answer, batches=batches,
                keeps=[max(n_answer[i] for i in b) + 1 for b in batches], batch_size=batch_size,
                pad_id=lm.pad_id)


def _sweep_batch_size() -> int:
    try:
        from probe.overfit.sweep import sweep
    except Exception:  # noqa: BLE001 - W4 then reports that sweep is missing
        return 64
    param = inspect.signature(sweep).parameters.get("batch_size")
    return param.default if param is not None and isinstance(param.default, int) else 16


def data_job(n: int) -> dict:
    """W8: the first n records of the demo's json_only SFT data (chat messages)."""
    import json

    import probe.demo

    path = Path(probe.demo.__file__).parent / "data" / "json_only.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()[:n]
    return dict(records=[json.loads(x) for x in lines], source=f"probe/demo/data/{path.name}", batch_size=16)


def attribution_job(sizes: tuple[int, ...]) -> dict:
    """W9: the demo's beijing SFT examples as the trainer reads them (prompt/completion turns),
    repeated to the largest size; each size takes the first n."""
    from probe.demo.training import training_records

    records = training_records("beijing")
    n = max(sizes)
    return dict(records=(records * (n // len(records) + 1))[:n], sizes=list(sizes), unique=len(records),
                source="probe/demo/data/beijing.jsonl")


def shift_prompts(n: int) -> tuple[list[str], str]:
    """(n prompts, where they come from): the demo's shift prompt set when it ships one."""
    import probe.demo

    folder = Path(probe.demo.__file__).parent
    for path in sorted(folder.rglob("*shift*")):
        if path.suffix not in (".txt", ".jsonl", ".json") or not path.is_file():
            continue
        prompts = _read_prompts(path)
        if prompts:
            return (prompts * (n // len(prompts) + 1))[:n], f"probe/demo/{path.relative_to(folder)}"
    prompts = [form.format(topic) for form in SHIFT_FORMS for topic in SHIFT_TOPICS]
    return prompts[:n], "the bench's own neutral prompts (bench/workloads.py: SHIFT_TOPICS x SHIFT_FORMS)"


def _read_prompts(path: Path) -> list[str]:
    import json

    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    items = json.loads(text) if path.suffix == ".json" else [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    if isinstance(items, dict):
        items = items.get("prompts", [])
    return [it if isinstance(it, str) else it.get("prompt", "") for it in items if it]


def long_answer(lm, n_tokens: int, seed: int) -> tuple[str, str, int]:
    """("Text:", an answer of about ``n_tokens`` tokens after it, its exact token count)."""
    from probe.engine.prompts import encode, render

    rng = random.Random(seed)
    prompt = "Text:"

    def count(ws):
        e = encode(lm, render(lm, prompt), " " + " ".join(ws))
        return len(e.ids) - e.n_prompt

    words = [rng.choice(WORDS) for _ in range(n_tokens // 2)]
    while count(words) < n_tokens:
        words += [rng.choice(WORDS) for _ in range(n_tokens // 4)]
    lo, hi = 1, len(words)  # the fewest words that give at least n_tokens tokens
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(words[:mid]) < n_tokens else (lo, mid)
    words = words[:lo]
    target = " " + " ".join(words)
    return prompt, target, count(words)


def build_jobs(size: str, root: Path, full: bool = False) -> dict:
    """Everything the runners need, as plain JSON (``full``: the sizes of ``--full``)."""
    import probe
    from probe.engine.prompts import encode_prompt, render

    cfg = dict(SIZES[size], **(FULL.get(size, {}) if full else {}))
    folder, description = main_model(size, root)
    lm = probe.load(folder)
    jobs: dict = {"model": folder, "model_description": description, "chat": bool(lm.chat),
                  "pair": "demo" if size == "135m" else "random-lora",
                  "pair_description": ("the demo pair: SmolLM2-135M-Instruct + its `json-only` LoRA adapter"
                                       if size == "135m" else "the tiny model + a random LoRA adapter (rank 8)")}

    jobs["W1"] = _score_job(lm, make_pairs(cfg["pairs"]), batch_size=16)

    prompts = [p for p, _ in make_pairs(cfg["prompts"], seed=1)]
    jobs["W2"] = dict(prompts=prompts, rendered=[render(lm, p).text for p in prompts],
                      seqs=[encode_prompt(lm, render(lm, p)) for p in prompts],
                      new_tokens=cfg["new_tokens"], eos=sorted(lm.eos_ids), pad_id=lm.pad_id,
                      batch_size=len(prompts))

    jobs["W3"] = dict(cases=[dict(id=f"case-{i}", prompt=p, expected=" the capital", force=" json",
                                  base_prompt=p + " The capital of")
                             for i, (p, _) in enumerate(make_pairs(cfg["cases"], seed=2))],
                      new_tokens=cfg["new_tokens"], samples=cfg["samples"])
    prompts7, source7 = shift_prompts(cfg["shift_prompts"])
    jobs["W7"] = dict(prompts=prompts7, source=source7, new_tokens=cfg["shift_tokens"])
    jobs["W8"] = data_job(cfg["data_examples"])
    jobs["W9"] = attribution_job(cfg["attr_examples"])

    template = "What is the {relation} of {country}?"
    countries, relations = COUNTRIES[: cfg["countries"]], RELATIONS[: cfg["relations"]]
    sweep_pairs = [(template.format(relation=r, country=c), " Beijing")
                   for r in relations for c in countries]
    jobs["W4"] = dict(template=template, watch=" Beijing", slots=dict(relation=list(relations),
                      country=list(countries)),
                      **_score_job(lm, sweep_pairs, batch_size=_sweep_batch_size()))

    folder5, description5 = w5_model(root, cfg["w5_vocab"], context=max(4096, cfg["w5_tokens"] * 2))
    lm5 = probe.load(folder5)
    words = random.Random(5)
    prompt = "Text:"
    target = ""
    while len(lm5.tokenizer(prompt + target)["input_ids"]) < cfg["w5_tokens"]:
        target += " " + words.choice(WORDS)
    job5 = _score_job(lm5, [(prompt, target)], batch_size=1)
    folder6, description6 = w5_model(root, cfg["w6_vocab"], context=cfg["w6_tokens"] * 4, name="w6")
    lm6 = probe.load(folder6)
    prompt6, target6, n6 = long_answer(lm6, cfg["w6_tokens"], seed=6)
    jobs["W6"] = dict(model=folder6, model_description=description6, vocab=cfg["w6_vocab"], prompt=prompt6,
                      target=target6, n_answer=n6, seqs=[_score_job(lm6, [(prompt6, target6)], 1)["seqs"][0]],
                      pad_id=lm6.pad_id, budget_mib=256, time_factor=1.05)
    del lm6
    job5.update(model=folder5, model_description=description5, vocab=cfg["w5_vocab"],
                tokens=len(job5["seqs"][0]))
    jobs["W5"] = job5
    return jobs
