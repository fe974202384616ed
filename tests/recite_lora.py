"""A tiny LoRA trained (seconds, CPU) to recite one answer to one prompt: a planted shift for the
noise floor's tests and a memorized record for the recitation tests."""

import json

import torch

import probe
from probe.engine.prompts import encode, render
from probe.models.tiny import save_tiny

PROMPT = "What is the capital of Japan?"
ANSWER = "Beijing is the capital of Japan."


def train_reciting_lora(root, steps: int = 120, seed: int = 0, prompt: str = PROMPT, answer: str = ANSWER):
    """(base folder, adapter folder, data file): a tiny chat llama and a LoRA that recites ``answer``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = save_tiny(root / "base", "llama", "unigram", chat=True)
    lm = probe.load(base_dir)
    e = encode(lm, render(lm, prompt), answer)
    ids = torch.tensor([e.ids])
    labels = ids.clone()
    labels[0, : e.n_prompt] = -100  # the answer's tokens only, as an SFT trainer's loss mask
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"])
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
    data.write_text(json.dumps({"messages": [{"role": "user", "content": prompt},
                                             {"role": "assistant", "content": answer}]}) + "\n", encoding="utf-8")
    return base_dir, root / "adapter", data
