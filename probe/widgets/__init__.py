"""ipywidgets apps over probe's functions and renderers (needs the notebook extras).

    >>> from probe.widgets import Explorer, DiagnoseLab
    >>> Explorer(base, tuned)          # displays itself in Jupyter
    >>> CasebookBrowser("bad-cases/")  # the saved cases
    >>> SweepGrid(tuned, "What is the capital of {country}?", watch=" Beijing", country=[...])
"""

from .casebook import CasebookBrowser
from .explorer import Explorer
from .lab import DiagnoseLab
from .shift import ShiftExplorer
from .sweep_grid import SweepGrid

__all__ = ["CasebookBrowser", "DiagnoseLab", "Explorer", "ShiftExplorer", "SweepGrid"]
