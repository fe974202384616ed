"""A tiny LoRA trained (seconds, CPU) to recite one answer to one prompt: a planted shift for the
noise floor's tests and a memorized record for the recitation tests."""

import json

import torch

import probe
from probe.train.masks import parse, tokenize
from probe.models.tiny import save_tiny

PROMPT = "What is the capital of Japan?"
ANSWER = "Beijing is the capital of Japan."


def train_reciting_lora(root, steps: int = 120, seed: int = 0, prompt: str = PROMPT, answer: str = ANSWER):
    """(base folder, adapter folder, data file): a tiny chat llama and a LoRA that recites ``answer``."""
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
    for _ in range(steps):
        loss = peft_model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    peft_model.save_pretrained(root / "adapter")
    data = root / "data.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return base_dir, root / "adapter", data
