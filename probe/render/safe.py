"""The one escaping helper every view uses: text that any encoder can write.

Model and user text may hold lone surrogates (``"\\udcff"``: bytes read with
``errors="surrogateescape"``, a tokenizer's bad decode, a JSON ``"\\ud800"`` escape). Python
keeps and saves them (case files are ASCII JSON), but no UTF-8 encoder writes them: an HTML
page, a notebook view or a terminal line holding one raises UnicodeEncodeError. Every view
passes its text through :func:`escape` (HTML) or :func:`encodable` (plain text), which show
such a character as its escape (``\\udcff``, visible) and leave every other character as it is.
"""

from __future__ import annotations

import html


def encodable(text: str) -> str:
    """``text`` with each lone surrogate written as its ``\\uXXXX`` escape (else unchanged)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def escape(text: str, quote: bool = True) -> str:
    """``html.escape`` of :func:`encodable` text: safe in HTML and in any UTF-8 file."""
    return html.escape(encodable(str(text)), quote)
