"""Forward passes, scoring, generation, sampling and per-token statistics on any loaded causal LM;
the support check that refuses a model feature probe cannot compute exactly."""
