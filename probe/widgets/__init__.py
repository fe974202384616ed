"""ipywidgets apps over probe's functions and renderers (needs the notebook extras).

    >>> from probe.widgets import Explorer, DiagnoseLab
    >>> Explorer(base, tuned)          # displays itself in Jupyter
    >>> CasebookBrowser("bad-cases/")  # the saved cases
"""

from .casebook import CasebookBrowser
from .explorer import Explorer
from .lab import DiagnoseLab

__all__ = ["CasebookBrowser", "DiagnoseLab", "Explorer"]
