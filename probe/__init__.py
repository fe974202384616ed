"""probe: why does a fine-tuned causal LM get this case wrong, one token at a time.

    >>> import probe
    >>> lm = probe.load("path/to/model")
    >>> probe.score(lm, "What is the capital of Japan?", "Tokyo")
    >>> probe.generate(lm, "List three colors.", force="```json\\n", watch=["{"])
    >>> probe.first_divergence(lm, "What is the capital of Japan?", reference="Tokyo.")
    >>> probe.Casebook("bad-cases/").add(probe.Case.from_result(diagnosis, models=(base, tuned)))
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
from .models import LM, load, load_pair
from .occlusion import Occlusion, occlusion
from .passrate import PassRate
from .results import Alternative, Divergence, TokenStep, TokenTrace, TraceDivergence
from .scoring import score, score_many
from .settings import GenerationSettings
from .sweeps import Sweep, sweep

__version__ = "0.1.0"

__all__ = [
    "LM",
    "Case",
    "Casebook",
    "CaseFileError",
    "ModelInfo",
    "CaseError",
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
    "score",
    "score_many",
]
