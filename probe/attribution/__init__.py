"""Which training examples made the tuned model give a case's wrong answer: per-example
gradients on the adapter's parameters (TracIn), hidden-state and BM25 similarity, the
Attribution result, and verify-by-retraining."""
