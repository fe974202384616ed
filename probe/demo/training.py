"""Seeded LoRA SFT of the demo adapters on CPU with TRL's ``SFTTrainer``.

    python -m probe.demo.train --adapter json-only     # or: beijing, all
    python -m probe.demo.train --adapter beijing --epochs 3 --rank 8 --out /tmp/b

Each chat example (``messages``: a user turn, then the assistant's answer) becomes a
conversational prompt/completion pair, which TRL renders with the tokenizer's own chat
template: the prompt with the generation prompt (what inference sees, token for token: TRL
checks the prefix), the completion being the answer plus the template's end-of-turn marker.
The loss covers the completion tokens only (``completion_only_loss``).

A run writes ``out_dir/``::

    adapter_config.json, adapter_model.safetensors   the final adapter (peft)
    trainer_state.json                               TRL/transformers' log (loss at every step)
    training_log.json                                probe's record: settings, timings, versions
    checkpoint-N/                                    the adapter and trainer_state.json after
                                                     each epoch (N: the global step)

``load_pair(base, adapter={"epoch-1": out/"checkpoint-10", ...})`` loads the checkpoints;
``probe.training_log(out_dir)`` reads the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from .model import cache_root, ensure_base

DATA_DIR = Path(__file__).parent / "data"
LOG_NAME = "training_log.json"
# Written into training_log.json; an adapter folder whose log has another value (the plain
# torch loop of earlier versions had none) is retrained by ensure_adapter, never reused.
TRAINER = "trl-sft-v1"


class TrainExtraMissing(ImportError):
    """TRL is not installed: training the demo adapters needs the ``train`` extra."""


@dataclass(frozen=True)
class Settings:
    """Training hyper-parameters; the defaults are the ones the demo adapters use."""

    epochs: int = 3
    rank: int = 8
    alpha: int = 16
    lr: float = 2e-3
    batch_size: int = 8
    seed: int = 0
    warmup_steps: int = 3
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                       "gate_proj", "up_proj", "down_proj")
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


def prompt_completion(record: dict, where: str = "record") -> dict:
    """A chat record as TRL's conversational prompt/completion: the last turn is the completion."""
    messages = record.get("messages") if isinstance(record, dict) else None
    if not messages or not isinstance(messages, list) or messages[-1].get("role") != "assistant":
        raise ValueError(f"{where}: 'messages' must be a list of turns ending with the assistant's")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def training_records(name: str, limit: int | None = None) -> list[dict]:
    """The demo adapter ``name``'s training examples as the trainer sees them (prompt/completion
    turns) with their ``source``: what ``probe.data_loss`` scores with the trainer's own mask."""
    data_path = ADAPTERS[name][0]
    records = read_jsonl(data_path)[:limit]
    return [{**prompt_completion(r, f"{data_path}, line {i}"), "source": r.get("source", "")}
            for i, r in enumerate(records, 1)]


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

def _import_trl():
    try:
        import trl
    except ImportError as err:
        raise TrainExtraMissing("training the demo adapters needs TRL: pip install 'token-probe[train]' "
                                f"({err})") from None
    return trl


def train_adapter(base_dir, data_path, out_dir, *, epochs: int = Settings.epochs,
                  rank: int = Settings.rank, lr: float = Settings.lr,
                  batch_size: int = Settings.batch_size, seed: int = Settings.seed,
                  alpha: int | None = None, warmup_steps: int = Settings.warmup_steps,
                  target_modules=Settings.target_modules,
                  layers=Settings.layers, threads: int | None = None) -> dict:
    """Train one LoRA adapter on ``data_path`` (SFTTrainer, CPU) and save it to ``out_dir``.

    ``alpha`` defaults to ``2 * rank``.  The learning rate warms up linearly for
    ``warmup_steps`` then decays linearly to zero.  A checkpoint is saved after each epoch.
    Returns probe's training log (also ``out_dir/training_log.json``).  ``out_dir`` is replaced
    atomically: it only ever holds a finished run.

    Raises:
        TrainExtraMissing: TRL is not installed (``pip install 'token-probe[train]'``).
    """
    _import_trl()
    import torch

    started = time.perf_counter()
    base_dir, data_path, out_dir = Path(base_dir), Path(data_path), Path(out_dir)
    settings = Settings(epochs=epochs, rank=rank, alpha=alpha or 2 * rank, lr=lr,
                        batch_size=batch_size, seed=seed, warmup_steps=warmup_steps,
                        target_modules=tuple(target_modules),
                        layers=tuple(layers) if layers is not None else None)
    # Use every core (2 on the reference machine) for the matmuls, and restore
    # the caller's setting afterwards.  Results are reproducible for a given
    # thread count and CPU; other thread counts may differ in the last bits.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or _usable_cores())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}-"))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private (0700)
    try:
        log = _train(settings, base_dir, data_path, tmp, started)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        torch.set_num_threads(previous_threads)
        shutil.rmtree(tmp, ignore_errors=True)
    return log


@contextlib.contextmanager
def _quiet_trainer():
    """No per-step log dicts, dataset progress bars or TRL's config deprecation warnings on the
    terminal: the run's numbers are in trainer_state.json and training_log.json."""
    from datasets.utils import logging as ds_logging

    bars = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        if bars:
            ds_logging.enable_progress_bar()


def _train(settings: Settings, base_dir: Path, data_path: Path, out: Path, started: float) -> dict:
    with _quiet_trainer():
        return _train_quietly(settings, base_dir, data_path, out, started)


def _train_quietly(settings: Settings, base_dir: Path, data_path: Path, out: Path, started: float) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(settings.seed)  # also seeds the LoRA A-matrix initialisation
    records = read_jsonl(data_path)
    rows = [prompt_completion(r, f"{data_path}, line {i}") for i, r in enumerate(records, 1)]
    dataset = Dataset.from_list(rows)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0,
                      target_modules=list(settings.target_modules), bias="none",
                      layers_to_transform=list(settings.layers) if settings.layers else None,
                      task_type="CAUSAL_LM")
    config = SFTConfig(
        output_dir=str(out), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=1,
        learning_rate=settings.lr, lr_scheduler_type="linear", warmup_steps=settings.warmup_steps,
        weight_decay=0.0, seed=settings.seed, data_seed=settings.seed,
        completion_only_loss=True, max_length=None,
        # TRL's defaults are for GPUs: bf16 on, gradient checkpointing on.
        use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        logging_steps=1, save_strategy="epoch", save_only_model=True, report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, dataset_num_proc=None)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer, peft_config=lora)
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every step's log dict
    setup_s = time.perf_counter() - started
    loop_start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - loop_start
    trainer.save_model(str(out))
    trainer.state.save_to_json(str(out / "trainer_state.json"))
    history = trainer.state.log_history
    losses = [round(h["loss"], 5) for h in history if "loss" in h]
    log = {
        "trainer": TRAINER,
        "adapter_data": data_path.name,
        "data_sha256": _sha256(data_path),
        "examples": len(rows),
        "settings": asdict(settings),
        "steps": trainer.state.global_step,
        "checkpoints": sorted((p.name for p in out.glob("checkpoint-*")), key=_step_of),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "threads": torch.get_num_threads(),
        "losses": losses,
        "seconds": {"setup": round(setup_s, 2), "train": round(train_s, 2),
                    "total": round(time.perf_counter() - started, 2)},
        "versions": _versions(),
    }
    (out / LOG_NAME).write_text(json.dumps(log, indent=2) + "\n")
    return log


def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _step_of(name: str) -> int:
    return int(name.rsplit("-", 1)[-1])


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
    import trl
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "trl": trl.__version__}


def adapter_dir(name: str, cache_dir=None) -> Path:
    """Where the demo adapter ``name`` lives: ``$PROBE_CACHE/adapters/<name>``."""
    return cache_root(cache_dir) / "adapters" / name


def checkpoints(name_or_dir, cache_dir=None) -> dict[str, Path]:
    """The per-epoch checkpoints of a demo run, ``{"epoch-1": .../checkpoint-10, ...}``.

    The mapping ``load_pair(base, adapter=...)`` takes to compare the epochs.
    """
    folder = Path(name_or_dir) if Path(name_or_dir).is_dir() else adapter_dir(str(name_or_dir), cache_dir)
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: _step_of(p.name))
    return {f"epoch-{i}": p for i, p in enumerate(found, 1)}


def is_trained(name: str, cache_dir=None) -> bool:
    """Whether the demo adapter ``name`` is in the cache, trained by this version's trainer with
    the current settings on the current data (else ensure_adapter trains it again)."""
    try:
        log = json.loads((adapter_dir(name, cache_dir) / LOG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    data_path, settings = ADAPTERS[name]
    return (isinstance(log, dict) and log.get("trainer") == TRAINER
            and log.get("settings") == json.loads(json.dumps(asdict(settings)))
            and log.get("data_sha256") == _sha256(data_path))


def ensure_adapter(name: str, cache_dir=None) -> Path:
    """Return the demo adapter folder, training it (with its default settings) if missing or stale."""
    data_path, settings = ADAPTERS[name]
    out = adapter_dir(name, cache_dir)
    if not is_trained(name, cache_dir):
        train_adapter(ensure_base(cache_dir), data_path, out, **asdict(settings))
    return out
