"""Why a case fails: diagnose / diagnose_many, the case batcher, evidence, verdicts and labels,
pass rates, checks, first divergence, compare."""
