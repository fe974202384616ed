"""SFT data: read the datasets people train on (JSON Lines, .gz, chat ``messages``,
prompt/completion, text), streamed, and count patterns in them: ``probe.data.count(path,
patterns)`` (see :mod:`probe.data.counts`; the readers are :mod:`probe.data.records`).
"""

from .counts import DataCounts, Example, PairCount, PatternCount, count
from .records import Skipped, split

__all__ = ["DataCounts", "Example", "PairCount", "PatternCount", "Skipped", "count", "split"]
