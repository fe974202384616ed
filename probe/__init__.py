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

from . import checks, data
from .anatomy import StructureError
from .case import Case, CaseFileError, ModelInfo
from .casebook import Casebook
from .cases import CaseError, CaseSpec, diagnose_many, read_cases
from .comparison import Comparison, Segment, compare
from .diagnosis import Diagnosis, Run, diagnose
from .divergence import first_divergence
from .data import DataCounts
from .generation import generate, generate_many
from .lens import LayerLens, layers
from .inputs import ModelInput
from .models import LM, IdenticalModelsWarning, load, load_pair
from .occlusion import Occlusion, occlusion
from .passrate import PassRate
from .regression import Regression, regression
from .results import Alternative, Divergence, FailedCase, TokenStep, TokenTrace, TraceDivergence
from .scoring import score, score_many
from .settings import GenerationSettings
from .shifts import Shift, shift
from .shift_follow import follow_token
from .sweeps import Sweep, sweep

__version__ = "0.1.0"

__all__ = [
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
    "ModelInput",
    "score",
    "score_many",
    "Shift",
    "shift",
    "follow_token",
    "Regression",
    "regression",
]
