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

from .core.version import __version__
from .diagnosis import checks
from . import data
from .engine.anatomy import StructureError
from .cases.case import Case, CaseFileError, ModelInfo
from .cases.casebook import Casebook
from .diagnosis.run import CaseError, CaseSpec, diagnose_many, read_cases
from .diagnosis.compare import Comparison, Segment, compare
from .diagnosis.result import Diagnosis, Run
from .diagnosis.run import diagnose
from .diagnosis.divergence import first_divergence
from .data.counts import DataCounts
from .engine.generation import generate, generate_many
from .overfit.lens import LayerLens, layers
from .models.inputs import ModelInput
from .models.load import LM, WeightsNotLoaded, load, load_pair
from .engine.identical import IdenticalModelsWarning
from .overfit.occlusion import Occlusion, occlusion
from .diagnosis.passrate import PassRate
from .shifts.regression import Regression, regression
from .engine.trace import Alternative, TokenStep, TokenTrace
from .diagnosis.divergence import Divergence, TraceDivergence
from .diagnosis.failure import FailedCase
from .engine.scoring import score, score_many
from .engine.settings import GenerationSettings
from .shifts.map import Shift, shift
from .shifts.follow import follow_token
from .overfit.sweep import Sweep, sweep
from .train.loss import DataLoss, data_loss
from .train.example_case import ExampleCase, example_case
from .train.epochs import Epochs, by_checkpoint
from .train.formats import TrainingLogError
from .train.log import TrainingLog, training_log
from .evals.flips import EvalFlip, EvalFlips, eval_flips
from .evals.logs import EvalLogError
from .evals.diagnose import ChoiceScores
from .evals.run import run_eval
from .packs.basics import Basics, basics
from .shifts.noise import NoiseFloor, noise_floor
from .train.recitation import Recitation, recitation
from .core.engines import LocalEngine


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
    "DataLoss",
    "data_loss",
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
    "NoiseFloor",
    "noise_floor",
    "Recitation",
    "recitation",
]
