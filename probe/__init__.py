"""probe: why does a fine-tuned causal LM get this case wrong, one token at a time.

    >>> import probe
    >>> lm = probe.load(folder)                # a model folder, hub name or .gguf file
    >>> t = probe.score(lm, "What is the capital of Japan?", "Tokyo")
    >>> g = probe.generate(lm, "List three colors.", force="```json\\n", watch=["{"])
    >>> d = probe.first_divergence(lm, "What is the capital of Japan?", reference="Tokyo.")
    >>> diagnosis = probe.diagnose(base, tuned, "What is the capital of France?", expected="Paris")
    >>> case = probe.Casebook("bad-cases/").add(probe.Case.from_result(diagnosis, models=(base, tuned)))

(``folder``, ``base`` and ``tuned`` stand for your model and a pair from ``probe.load_pair``;
tests/test_docs.py runs these examples on tiny models.)
"""

from importlib import import_module

from .core import registry as _registry
from .core.version import __version__

# What ``probe.NAME`` imports, on first use: ``import probe`` (and so ``probe --help``) stays
# light, torch and transformers load when a function needs them. Every module listed here is
# imported before the registry looks up a result type it may not know yet (reading a case file).
_SUBMODULES = {"checks": ".diagnosis.checks", "data": ".data"}
_LAZY = {
    "StructureError": ".engine.anatomy",
    "Case": ".cases.case",
    "CaseFileError": ".cases.case",
    "ModelInfo": ".cases.case",
    "Casebook": ".cases.casebook",
    "CaseError": ".diagnosis.run",
    "CaseSpec": ".diagnosis.run",
    "diagnose_many": ".diagnosis.run",
    "read_cases": ".diagnosis.run",
    "Comparison": ".diagnosis.compare",
    "Segment": ".diagnosis.compare",
    "compare": ".diagnosis.compare",
    "Diagnosis": ".diagnosis.result",
    "Run": ".diagnosis.result",
    "diagnose": ".diagnosis.run",
    "first_divergence": ".diagnosis.divergence",
    "DataCounts": ".data.counts",
    "generate": ".engine.generation",
    "generate_many": ".engine.generation",
    "LayerLens": ".overfit.lens",
    "layers": ".overfit.lens",
    "ModelInput": ".models.inputs",
    "LM": ".models.load",
    "WeightsNotLoaded": ".models.load",
    "load": ".models.load",
    "load_pair": ".models.load",
    "IdenticalModelsWarning": ".engine.identical",
    "Occlusion": ".overfit.occlusion",
    "occlusion": ".overfit.occlusion",
    "PassRate": ".diagnosis.passrate",
    "Regression": ".shifts.regression",
    "regression": ".shifts.regression",
    "Strength": ".shifts.strength",
    "Strengths": ".shifts.strength",
    "strength": ".shifts.strength",
    "strength_many": ".shifts.strength",
    "Alternative": ".engine.trace",
    "TokenStep": ".engine.trace",
    "TokenTrace": ".engine.trace",
    "Divergence": ".diagnosis.divergence",
    "TraceDivergence": ".diagnosis.divergence",
    "FailedCase": ".diagnosis.failure",
    "score": ".engine.scoring",
    "score_many": ".engine.scoring",
    "GenerationSettings": ".engine.settings",
    "Shift": ".shifts.map",
    "shift": ".shifts.map",
    "follow_token": ".shifts.follow",
    "Sweep": ".overfit.sweep",
    "sweep": ".overfit.sweep",
    "DataLoss": ".train.loss",
    "data_loss": ".train.loss",
    "ExampleCase": ".train.example_case",
    "example_case": ".train.example_case",
    "Epochs": ".train.epochs",
    "by_checkpoint": ".train.epochs",
    "TrainingLogError": ".train.formats",
    "TrainingLog": ".train.log",
    "training_log": ".train.log",
    "EvalFlip": ".evals.flips",
    "EvalFlips": ".evals.flips",
    "eval_flips": ".evals.flips",
    "EvalLogError": ".evals.logs",
    "ChoiceScores": ".evals.diagnose",
    "run_eval": ".evals.run",
    "LocalEngine": ".core.engines",
    "Basics": ".packs.basics",
    "basics": ".packs.basics",
    "Collateral": ".demo.collateral",  # the demo's fast basics pass (a result type case files may hold)
    "NoiseFloor": ".shifts.noise",
    "noise_floor": ".shifts.noise",
    "Recitation": ".train.recitation",
    "recitation": ".train.recitation",
    "attribute": ".attribution.attribute",
    "Attribution": ".attribution.result",
    "Verification": ".attribution.verify",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = import_module(_SUBMODULES[name], __name__)
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    else:
        raise AttributeError(f"module 'probe' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


def _import_all() -> None:
    for where in dict.fromkeys([*_LAZY.values(), *_SUBMODULES.values()]):
        import_module(where, __name__)


_registry.on_lookup(_import_all)

def ray_engine(address=None, workers: int = 2, resources_per_worker=None, **options):
    """Run diagnose_many/shift on Ray workers (see probe.distributed.ray_engine); needs
    ``pip install 'token-probe[ray]'``."""
    from .distributed.ray_engine import ray_engine as make

    return make(address, workers, resources_per_worker, **options)


__all__ = [
    "LocalEngine",
    "ray_engine",
    "LM",
    "Case",
    "Casebook",
    "CaseFileError",
    "ModelInfo",
    "CaseError",
    "FailedCase",
    "CaseSpec",
    "Comparison",
    "Diagnosis",
    "Run",
    "PassRate",
    "GenerationSettings",
    "Segment",
    "checks",
    "data",
    "DataCounts",
    "LayerLens",
    "Occlusion",
    "StructureError",
    "Sweep",
    "layers",
    "occlusion",
    "sweep",
    "compare",
    "diagnose",
    "diagnose_many",
    "read_cases",
    "Alternative",
    "Divergence",
    "TokenStep",
    "TokenTrace",
    "TraceDivergence",
    "first_divergence",
    "generate",
    "generate_many",
    "load",
    "load_pair",
    "IdenticalModelsWarning",
    "WeightsNotLoaded",
    "ModelInput",
    "score",
    "score_many",
    "Shift",
    "shift",
    "follow_token",
    "Regression",
    "regression",
    "Strength",
    "Strengths",
    "strength",
    "strength_many",
    "DataLoss",
    "data_loss",
    "attribute",
    "Attribution",
    "Verification",
    "ExampleCase",
    "example_case",
    "Epochs",
    "by_checkpoint",
    "TrainingLog",
    "TrainingLogError",
    "training_log",
    "EvalFlip",
    "EvalFlips",
    "EvalLogError",
    "ChoiceScores",
    "eval_flips",
    "run_eval",
    "Basics",
    "basics",
    "Collateral",
    "NoiseFloor",
    "noise_floor",
    "Recitation",
    "recitation",
]
