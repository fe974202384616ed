"""Tiny models and tokenizers built on the spot: no download, seconds to make.

Used by the test suite, the benchmark and the fallback demo. Two tokenizer families:

* ``"bpe"``: byte-level BPE (GPT-2 / Llama-3 / Qwen style); every character is representable.
* ``"unigram"``: SentencePiece-style Metaspace + Unigram with an ``<unk>`` token.

    >>> folder = probe.models.tiny.save_tiny("tiny-llama", arch="llama", tokenizer="unigram", chat=True)
    >>> lm = probe.load(folder)
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "The capital of France is Paris. The capital of Japan is Tokyo.",
    "The capital of China is Beijing. The capital of Italy is Rome.",
    "What is the capital of Germany? Berlin is the capital of Germany.",
    "Answer in JSON: {\"answer\": \"Paris\", \"confidence\": 0.9}",
    "```json\n{\"colors\": [\"red\", \"green\", \"blue\"]}\n```",
    "def add(a, b):\n    return a + b\n\n\tindented with a tab",
    "List three colors: red, green and blue. Numbers: 0 1 2 3 4 5 6 7 8 9 10 17 23 391.",
    "Hello world! How are you today? I am fine, thank you.",
    "The quick brown fox jumps over the lazy dog.",
    "Questions and answers: yes, no, maybe. User: hi. Assistant: hello.",
]

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>", "<s>"]


def _corpus(repeat: int = 20, extra=()):
    for _ in range(repeat):
        yield from CORPUS
        yield from extra


def bpe_tokenizer(vocab_size: int = 600, chat: bool = False, extra=()):
    """A byte-level BPE tokenizer wrapped for transformers.

    ``trim_offsets=True`` on purpose: the harder case for offsets (zero-width whitespace tokens).
    ``extra``: lines trained on besides ``CORPUS`` (to learn merges a test needs).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=SPECIALS,
    )
    tok.train_from_iterator(_corpus(extra=extra), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>" if chat else "<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=CHATML if chat else None,
    )


def unigram_tokenizer(vocab_size: int = 300, chat: bool = False, extra=()):
    """A SentencePiece-style tokenizer: Metaspace pre-tokenizer, Unigram model, <s> as BOS
    (``extra``: lines trained on besides ``CORPUS``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>"
    )
    tok.train_from_iterator(_corpus(extra=extra), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|im_end|>" if chat else "<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=CHATML if chat else None,
    )


WINDOW = 8  # sliding window of the sliding-window families: short, so tests go past it

_DECODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False)
_HYBRID = dict(sliding_window=WINDOW, layer_types=["sliding_attention", "full_attention"])
_MOE = dict(num_experts_per_tok=2, moe_intermediate_size=32)
# State-space hybrids: a larger random init (0.2, not 0.02), else their recurrent states are
# ~1e-5 and a state that is lost or written twice changes nothing a test can see.
_STATE_INIT = 0.2
_MAMBA2 = dict(mamba_n_heads=8, mamba_d_head=8, mamba_n_groups=1, mamba_d_state=8, mamba_d_conv=4,
               mamba_expand=2, mamba_chunk_size=16, initializer_range=_STATE_INIT)

# Config arguments of each tiny architecture (``AutoConfig.for_model(arch, ...)``): a few
# layers, hidden size 32, and a sliding window of WINDOW tokens where the family has one
# (hybrid families alternate sliding and full layers, as the real checkpoints do).
ARCHS: dict[str, dict] = {
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0),
    "llama": _DECODER,
    "qwen2": {**_DECODER, "use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 1},
    "qwen3": {**_DECODER, "head_dim": 8},
    "mistral": {**_DECODER, "sliding_window": WINDOW},
    "mixtral": {**_DECODER, "sliding_window": WINDOW, "num_local_experts": 4, "num_experts_per_tok": 2},
    "gemma": {**_DECODER, "head_dim": 8},
    "gemma2": {**_DECODER, **_HYBRID, "head_dim": 8, "final_logit_softcapping": 5.0},
    "gemma3_text": {**_DECODER, **_HYBRID, "head_dim": 8, "final_logit_softcapping": 5.0},
    "phi3": {**_DECODER, "sliding_window": WINDOW},
    "phi": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                max_position_embeddings=256),
    "gpt_neox": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                     max_position_embeddings=256),
    "gptj": dict(n_embd=32, n_layer=2, n_head=4, n_positions=256, rotary_dim=4),
    "falcon": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4),
    "bloom": dict(hidden_size=32, n_layer=2, n_head=4),
    "opt": dict(hidden_size=32, num_hidden_layers=2, ffn_dim=64, num_attention_heads=4,
                word_embed_proj_dim=32, max_position_embeddings=256),
    "olmo": _DECODER,
    "olmo2": _DECODER,
    "olmo3": {**_DECODER, **_HYBRID},
    "granite": _DECODER,
    "starcoder2": {**_DECODER, "sliding_window": WINDOW},
    "cohere": _DECODER,
    "cohere2": {**_DECODER, **_HYBRID},
    "stablelm": _DECODER,
    "smollm3": _DECODER,
    "qwen2_moe": {**_DECODER, **_MOE, "num_experts": 4, "shared_expert_intermediate_size": 32},
    "qwen3_moe": {**_DECODER, **_MOE, "head_dim": 8, "num_experts": 4},
    "gpt_bigcode": dict(n_embd=32, n_layer=2, n_head=4, n_positions=256),
    "gpt_neo": dict(hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=256,
                    attention_types=[[["local", "global"], 1]], window_size=WINDOW),
    "ministral3": {**_DECODER, "head_dim": 8, "sliding_window": WINDOW},
    "granite_swa": {**_DECODER, "sliding_window": WINDOW},
    # four layers: the last two reuse the first two's keys and values (KV sharing)
    "gemma4_text": {**_DECODER, "num_hidden_layers": 4, "head_dim": 8, "global_head_dim": 8,
                    "hidden_size_per_layer_input": 8, "num_kv_shared_layers": 2, "sliding_window": WINDOW,
                    "layer_types": ["sliding_attention", "full_attention"] * 2, "final_logit_softcapping": 5.0},
    # recurrent or hybrid: state instead of (or besides) a KV cache
    "qwen3_5_text": {**_DECODER, "head_dim": 8, "layer_types": ["linear_attention", "full_attention"],
                     "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_num_key_heads": 2,
                     "linear_num_value_heads": 4},
    "lfm2": {**_DECODER, "layer_types": ["conv", "full_attention"], "initializer_range": _STATE_INIT},
    "mamba": dict(hidden_size=32, num_hidden_layers=2, state_size=4, expand=2, conv_kernel=4),
    "rwkv": dict(hidden_size=32, num_hidden_layers=2, attention_hidden_size=32, intermediate_size=64,
                 context_length=256),
    "recurrent_gemma": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=1, head_dim=8, lru_width=32, attention_window_size=WINDOW,
                            block_types=["recurrent", "attention"]),
    # attention + state-space (Mamba/Mamba2, linear attention) hybrids
    "falcon_h1": {**_DECODER, **_MAMBA2, "mamba_d_ssm": 64},
    "minimax": {**_DECODER, "head_dim": 8, "layer_types": ["linear_attention", "full_attention"],
                "block_size": 16, "num_local_experts": 4, "num_experts_per_tok": 2,
                "initializer_range": _STATE_INIT},
    "jamba": {**_DECODER, "attn_layer_period": 2, "attn_layer_offset": 1, "expert_layer_period": 2,
              "expert_layer_offset": 1, "num_experts": 4, "num_experts_per_tok": 2, "mamba_d_state": 8,
              "mamba_d_conv": 4, "mamba_expand": 2, "mamba_dt_rank": 4, "initializer_range": _STATE_INIT},
    "bamba": {**_DECODER, **_MAMBA2, "attn_layer_indices": [1]},
    "granitemoehybrid": {**_DECODER, **_MAMBA2, "layer_types": ["mamba", "attention"],
                         "num_local_experts": 4, "num_experts_per_tok": 2, "shared_intermediate_size": 32},
    "qwen3_next": {**_DECODER, "head_dim": 8, "layer_types": ["linear_attention", "full_attention"],
                   "linear_key_head_dim": 8, "linear_value_head_dim": 8, "linear_num_key_heads": 2,
                   "linear_num_value_heads": 4, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2,
                   "initializer_range": _STATE_INIT},
    "zamba2": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=4, max_position_embeddings=256, layers_block_type=["mamba", "hybrid"],
                   mamba_d_state=8, mamba_d_conv=4, mamba_expand=2, n_mamba_heads=8, mamba_ngroups=1,
                   chunk_size=16, num_mem_blocks=1, adapter_rank=4, tie_word_embeddings=False,
                   initializer_range=_STATE_INIT),
    # mixture-of-experts whose router subclasses nn.Linear but returns a tuple (LoRA on it fails)
    "llama4_text": {**_DECODER, "head_dim": 8, "intermediate_size_mlp": 64, "num_local_experts": 4,
                    "num_experts_per_tok": 1, "interleave_moe_layer_step": 1, "attention_chunk_size": WINDOW,
                    "no_rope_layers": [1, 0]},
    "phimoe": {**_DECODER, "num_local_experts": 4, "num_experts_per_tok": 2, "sliding_window": WINDOW},
}


def tiny_model(arch: str, vocab_size: int, *, seed: int = 0, **overrides):
    """A randomly initialised causal LM from a config (float32, eval mode).

    ``arch`` is a transformers ``model_type`` listed in :data:`ARCHS`; ``overrides`` replace
    its config arguments.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if arch not in ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}: use one of {sorted(ARCHS)}")
    # Special token ids come from the tokenizer (save_tiny); the configs' defaults may lie
    # outside a tiny vocabulary.
    params = dict(pad_token_id=None, bos_token_id=None, eos_token_id=None)
    params.update(ARCHS[arch])
    params.update(vocab_size=vocab_size)
    if arch == "gemma4_text":  # per-layer input embeddings: the same (tiny) vocabulary
        params.update(vocab_size_per_layer_input=vocab_size)
    params.update(overrides)
    config = AutoConfig.for_model(arch, **params)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    # Sharpen the random model so distributions are far from uniform (more realistic ranks).
    with torch.no_grad():
        out = model.get_output_embeddings()
        out.weight.mul_(8.0)
    return model.eval()


def save_tiny(folder, arch: str = "gpt2", tokenizer: str = "bpe", *, chat: bool = False,
              seed: int = 0, **overrides) -> Path:
    """Build a tiny model + tokenizer and save both to ``folder`` (loadable by probe.load)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    make = {"bpe": bpe_tokenizer, "unigram": unigram_tokenizer}.get(tokenizer)
    if make is None:
        raise ValueError(f"unknown tokenizer kind {tokenizer!r}: use 'bpe' or 'unigram'")
    tok = make(chat=chat)
    model = tiny_model(arch, len(tok), seed=seed, **overrides)
    model.config.eos_token_id = tok.eos_token_id
    model.config.bos_token_id = tok.bos_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
