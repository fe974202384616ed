"""Benchmark flips: which lm-evaluation-harness samples fine-tuning flipped, and why."""
