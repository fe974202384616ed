"""Loading: load / load_pair (LoRA adapters), GGUF files, the input audit, tiny models for tests."""
