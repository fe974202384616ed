"""The training examples as the trainer reads them, for every attribution method and verify().

Read, parsed and masked as :func:`probe.data_loss` reads them (the same line numbers, the same
records skipped: unreadable, nothing under the mask, longer than the model's context).
"""

from __future__ import annotations

from ..core.progress import progress as progress_bar
from ..data.records import BLANK, BadRecord, open_dataset
from ..train.channels import channel_value
from ..train.masks import parse, tokenize
from .lexical import record_text


class Context:
    """What :meth:`Attribution.verify` needs from the run that made it (kept in memory only)."""

    def __init__(self, tuned, records, lines, query_kind, wrong):
        self.tuned, self.records, self.lines = tuned, records, lines
        self.query_kind, self.wrong = query_kind, wrong


def tuned_of(pair):
    if isinstance(pair, (tuple, list)):
        if len(pair) != 2:
            raise TypeError("give the tuned LM or a (base, tuned) pair")
        return pair[1]
    return pair


def read_examples(tuned, dataset, *, mask=None, channel=None, limit=None, progress=False):
    """[(line, channel, Tokens, record text, record)], skipped count, source: as data_loss reads."""
    source, total, unit, open_records = open_dataset(dataset)
    out, skipped, truncated = [], 0, []
    with progress_bar(total, progress, "attribute: reading", unit) as bar:
        for line, record in open_records(bar, truncated):
            if record is BLANK:
                continue
            if record is None or isinstance(record, BadRecord):
                skipped += 1
                continue
            try:
                r = parse(record)
                t = tokenize(tuned, r, mask)
            except BadRecord:
                skipped += 1
                continue
            if tuned.max_length is not None and len(t.ids) > tuned.max_length:
                skipped += 1
                continue
            out.append((line, channel_value(record, channel), t, record_text(r), record))
            if limit is not None and len(out) >= limit:
                break
    skipped += len(truncated)
    if not out:
        raise ValueError(f"dataset {source} has no example to score ({skipped} skipped)")
    return out, skipped, source
