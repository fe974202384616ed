"""Embedded default model pair for probe demos.

The demo pair is a small base model (SmolLM2-135M-Instruct, see :mod:`.base`)
plus LoRA adapters trained on purposely skewed data (see :mod:`.make_data`
and :mod:`.train`), so that the tuned model visibly differs from the base.
"""
