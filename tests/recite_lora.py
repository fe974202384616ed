"""A tiny LoRA trained (seconds, CPU) to recite one answer to one prompt: a planted shift for the
noise floor's tests and a memorized record for the recitation tests."""

import json

import torch

import probe
from probe.train.masks import parse, tokenize
from probe.models.tiny import save_tiny

PROMPT = "What is the capital of Japan?"
ANSWER = "Beijing is the capital of Japan."


UNTIL = 0.01  # mean loss over the answer: a tenth of data_loss's "memorized" bound (0.1)
MAX_STEPS = 1000


def train_reciting_lora(root, steps: int = 120, seed: int = 0, prompt: str = PROMPT, answer: str = ANSWER):
    """(base folder, adapter folder, data file): a tiny chat llama and a LoRA that recites ``answer``.

    At least ``steps`` steps, then on until the answer's mean loss is at most UNTIL (at most
    MAX_STEPS): the tiny unigram tokenizer gives other ids on every run, and on some runs 120 steps
    left the answer short of memorized (CI-like run: no "memorized" flag, a recitation cut short).
    At a mean loss <= 0.01 over n <= 69 answer tokens each token has p >= exp(-0.69) > 0.5: greedy
    decoding recites it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = save_tiny(root / "base", "llama", "unigram", chat=True)
    lm = probe.load(base_dir)
    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    t = tokenize(lm, parse(record), "assistant")  # the ids and loss mask data_loss scores
    ids = torch.tensor([t.ids])
    labels = torch.where(torch.tensor([t.mask]), ids, torch.full_like(ids, -100))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj", "lm_head"])
    peft_model = get_peft_model(model, cfg)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-3)
    peft_model.train()
    for step in range(MAX_STEPS):
        loss = peft_model(input_ids=ids, labels=labels).loss
        if step >= steps and loss.item() <= UNTIL:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    else:
        raise AssertionError(f"the reciting LoRA did not reach loss {UNTIL} in {MAX_STEPS} steps ({loss.item():.4f})")
    assert int(torch.tensor(t.mask).sum()) <= 69  # the bound above
    peft_model.save_pretrained(root / "adapter")
    data = root / "data.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return base_dir, root / "adapter", data
