"""ipywidgets apps over probe's functions and renderers (needs the notebook extras).

    >>> from probe.widgets import CasebookBrowser, DiagnoseLab, Explorer, SweepGrid
    >>> Explorer(base, tuned)          # displays itself in Jupyter
    <probe.widgets.explorer.Explorer object at ...>
    >>> browser = CasebookBrowser("bad-cases/")  # the saved cases
    >>> grid = SweepGrid(tuned, "What is the capital of {country}?", watch=" Beijing",
    ...                  country=["Japan", "France"])
"""

from .casebook import CasebookBrowser
from .evals import EvalFlips
from .explorer import Explorer
from .lab import DiagnoseLab
from .shift import ShiftExplorer
from .sweep_grid import SweepGrid
from .training import TrainingLab
from .data_panel import DataLossPanel

__all__ = ["CasebookBrowser", "DataLossPanel", "DiagnoseLab", "EvalFlips", "Explorer", "ShiftExplorer", "SweepGrid",
           "TrainingLab"]
