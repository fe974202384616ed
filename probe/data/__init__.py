"""SFT data: read the datasets people train on (JSON Lines, .gz, chat ``messages``,
prompt/completion, text), streamed, and count patterns in them: ``probe.data.count(path,
patterns)`` (see :mod:`probe.data.counts`).
"""

from .counts import DataCounts, Example, PairCount, PatternCount, Skipped, count, split

__all__ = ["DataCounts", "Example", "PairCount", "PatternCount", "Skipped", "count", "split"]
