"""ipywidgets apps over probe's functions and renderers (needs the notebook extras).

    >>> from probe.widgets import Explorer, DiagnoseLab
    >>> Explorer(base, tuned)          # displays itself in Jupyter
"""

from .explorer import Explorer
from .lab import DiagnoseLab

__all__ = ["DiagnoseLab", "Explorer"]
