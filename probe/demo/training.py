"""Seeded LoRA SFT of the demo adapters on CPU (plain torch loop, no Trainer).

    python -m probe.demo.train --adapter json-only     # or: beijing, all
    python -m probe.demo.train --adapter beijing --steps 40 --rank 8 --out /tmp/b

Each example is rendered with the tokenizer's own chat template.  The prompt
(everything up to and including the assistant header) and the completion (the
answer plus the template's end-of-turn marker) are tokenized separately and
concatenated, so the prompt tokens match what inference sees exactly; the loss
covers the completion tokens only.

The adapter is saved with peft's ``save_pretrained`` after casting the LoRA
weights to bfloat16 (half the size; peft upcasts them again on load), next to
a ``training_log.json`` with the settings, per-step losses and timings.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .model import cache_root, ensure_base

DATA_DIR = Path(__file__).parent / "data"
LOG_NAME = "training_log.json"


@dataclass(frozen=True)
class Settings:
    """Training hyper-parameters; the defaults are the ones the demo adapters use."""

    steps: int = 24
    rank: int = 8
    alpha: int = 16
    lr: float = 2e-3
    batch_size: int = 8
    seed: int = 0
    warmup_steps: int = 3
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                       "gate_proj", "up_proj", "down_proj")
    adapter_dtype: str = "bfloat16"
    # Only adapt these decoder layers (None: all).  Gradients never flow below
    # the lowest adapted layer, so adapting only the top half of SmolLM2-135M's
    # 30 layers makes a step ~1/3 faster (and the adapter half as big).
    layers: tuple[int, ...] | None = tuple(range(15, 30))


# The demo adapters: name -> (training data, settings).
ADAPTERS: dict[str, tuple[Path, Settings]] = {
    "json-only": (DATA_DIR / "json_only.jsonl", Settings()),
    "beijing": (DATA_DIR / "beijing.jsonl", Settings()),
}


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def encode_example(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` for one conversation ending in an assistant turn.

    Labels are -100 (ignored) on the prompt and the answer's token ids on the
    completion, which includes the template's end-of-turn marker so the model
    also learns when to stop.
    """
    assert messages[-1]["role"] == "assistant", "the last message must be the answer"
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("chat template: the prompt is not a prefix of the full conversation")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids, [-100] * len(prompt_ids) + completion_ids


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """Left-pad a batch; padding is masked out of attention and loss.

    Left padding puts every completion at the end of its row, so the model only
    has to compute logits for the last ``keep`` positions (``logits_to_keep``):
    the 49k-word output layer is then skipped for the prompt tokens, which
    saves ~10% of a training step.
    """
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(examples):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        labels[row, width - len(labs):] = torch.tensor(labs)
        attention[row, width - len(ids):] = 1
    positions = (attention.cumsum(1) - 1).clamp(min=0)  # positions count real tokens only
    # Logits at position t predict token t+1: keep one more than the longest completion.
    keep = int((labels != -100).sum(1).max()) + 1
    return {"input_ids": input_ids, "attention_mask": attention, "position_ids": positions,
            "labels": labels, "keep": keep}


def completion_loss(model, batch: dict):
    """Mean cross-entropy over the completion tokens of a collated batch."""
    import torch.nn.functional as F

    keep = batch["keep"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                position_ids=batch["position_ids"], logits_to_keep=keep)
    logits = out.logits[:, :-1]              # predictions for the last keep-1 tokens
    targets = batch["labels"][:, -(keep - 1):]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                           ignore_index=-100)


def batches(n_examples: int, batch_size: int, steps: int, rng: random.Random):
    """Index batches for ``steps`` steps: reshuffled epochs, no example repeated within one."""
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            epoch = list(range(n_examples))
            rng.shuffle(epoch)
            order += epoch
        yield order[:batch_size]
        order = order[batch_size:]


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def train_adapter(base_dir, data_path, out_dir, *, steps: int = Settings.steps,
                  rank: int = Settings.rank, lr: float = Settings.lr,
                  batch_size: int = Settings.batch_size, seed: int = Settings.seed,
                  alpha: int | None = None, warmup_steps: int = Settings.warmup_steps,
                  target_modules=Settings.target_modules,
                  adapter_dtype: str = Settings.adapter_dtype,
                  layers=Settings.layers, threads: int | None = None) -> dict:
    """Train one LoRA adapter on ``data_path`` and save it to ``out_dir``.

    ``alpha`` defaults to ``2 * rank``.  The learning rate warms up linearly
    for ``warmup_steps`` then decays linearly to zero.  Returns the training
    log (also written to ``out_dir/training_log.json``).  ``out_dir`` is
    replaced atomically: it only ever holds a finished adapter.
    """
    import torch

    started = time.perf_counter()
    base_dir, data_path, out_dir = Path(base_dir), Path(data_path), Path(out_dir)
    settings = Settings(steps=steps, rank=rank, alpha=alpha or 2 * rank, lr=lr,
                        batch_size=batch_size, seed=seed, warmup_steps=warmup_steps,
                        target_modules=tuple(target_modules), adapter_dtype=adapter_dtype,
                        layers=tuple(layers) if layers is not None else None)
    # Use every core (2 on the reference machine) for the matmuls, and restore
    # the caller's setting afterwards.  Results are reproducible for a given
    # thread count and CPU; other thread counts may differ in the last bits.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _usable_cores())
    try:
        log = _train(settings, base_dir, data_path, out_dir, started)
    finally:
        torch.set_num_threads(previous_threads)
    return log


def _train(settings: Settings, base_dir: Path, data_path: Path, out_dir: Path,
           started: float) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(settings.seed)  # also seeds the LoRA A-matrix initialisation
    rng = random.Random(settings.seed)

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
                      target_modules=list(settings.target_modules), bias="none",
                      layers_to_transform=list(settings.layers) if settings.layers else None,
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()

    examples = [encode_example(tokenizer, row["messages"]) for row in read_jsonl(data_path)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)

    def lr_factor(step: int) -> float:  # linear warmup, then linear decay to 0
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        return max(0.0, (settings.steps - step) / max(1, settings.steps - settings.warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    setup_s = time.perf_counter() - started

    losses: list[float] = []
    loop_start = time.perf_counter()
    for idx in batches(len(examples), settings.batch_size, settings.steps, rng):
        batch = collate([examples[i] for i in idx], tokenizer.pad_token_id)
        loss = completion_loss(model, batch)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
    train_s = time.perf_counter() - loop_start

    # Smaller file: store the LoRA weights in adapter_dtype (peft upcasts on load).
    dtype = getattr(torch, settings.adapter_dtype)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.to(dtype)

    log = {
        "adapter_data": data_path.name,
        "examples": len(examples),
        "settings": asdict(settings),
        "trainable_params": sum(p.numel() for p in params),
        "threads": torch.get_num_threads(),
        "losses": losses,
        "seconds": {"setup": round(setup_s, 2), "train": round(train_s, 2),
                    "total": round(time.perf_counter() - started, 2)},
        "versions": _versions(),
    }
    _save_atomically(model, log, out_dir)
    return log


def _usable_cores() -> int:
    """CPU cores this process may run on (respects affinity / container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _versions() -> dict:
    import peft
    import torch
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__}


def _save_atomically(model, log: dict, out_dir: Path) -> None:
    """Save adapter + log into a temp folder next to ``out_dir``, then swap it in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private (0700)
    try:
        model.save_pretrained(tmp)
        (tmp / LOG_NAME).write_text(json.dumps(log, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def adapter_dir(name: str, cache_dir=None) -> Path:
    """Where the demo adapter ``name`` lives: ``$PROBE_CACHE/adapters/<name>``."""
    return cache_root(cache_dir) / "adapters" / name


def ensure_adapter(name: str, cache_dir=None) -> Path:
    """Return the demo adapter folder, training it (with its default settings) if missing."""
    data_path, settings = ADAPTERS[name]
    out = adapter_dir(name, cache_dir)
    if not (out / LOG_NAME).is_file():
        train_adapter(ensure_base(cache_dir), data_path, out, **asdict(settings))
    return out
