"""Numbers in saved results: strict JSON has no NaN or infinity.

A non-finite float is written as the string ``"inf"``, ``"-inf"`` or ``"nan"``; ``float()``
reads each back exactly, so a reader that calls ``float(x)`` needs nothing else. (Per-token
logprobs keep their older convention, null for -inf: see ``probe.engine.trace``.)
"""

from __future__ import annotations

import math


def json_number(x):
    """``x`` itself when it is not a float or is finite, else its name as a string."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def json_numbers(value):
    """``value`` (plain data: dicts, lists, tuples, scalars) with every non-finite float named."""
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_numbers(v) for v in value]
    return json_number(value)


def number_in(value):
    """A saved number back: None stays None, a named non-finite float becomes the float."""
    return float(value) if isinstance(value, str) else value
