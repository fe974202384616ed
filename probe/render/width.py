"""Text measured the way a terminal draws it: wide East Asian characters take two columns,
combining marks none. Pure helpers for the plain-text tables (:mod:`probe.render.text`).

Text from a model or a case file may hold characters a terminal would act on rather than
draw (a newline, a tab, a bidi override, a lone surrogate): :func:`visible` writes each as
its escape, as ``repr`` would, so one cell stays one cell of one line.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"


def char_width(c: str) -> int:
    """Columns one character takes: 2 for East Asian wide/fullwidth, 0 for a combining mark."""
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def width(text: str) -> int:
    """Display width of ``text`` (one line)."""
    return sum(char_width(c) for c in text)


def visible(text: str) -> str:
    """``text`` with every character that is not printable (controls, format characters,
    lone surrogates, line and paragraph separators) written as its ``repr`` escape."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def fit(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` columns, ending in an ellipsis when cut."""
    if n <= 0:
        return ""
    if width(text) <= n:
        return text
    out, used = [], 0
    for c in text:
        w = char_width(c)
        if used + w > n - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + ELLIPSIS


def pad(text: str, n: int) -> str:
    """``text`` padded with spaces to ``n`` columns."""
    return text + " " * max(0, n - width(text))


def quoted(text: str, n: int) -> str:
    """A token as ``repr`` shows it, at most ``n`` columns: when cut, the ellipsis goes inside
    the closing quote so the cell still reads as one quoted token."""
    shown = repr(str(text))
    if width(shown) <= n or n < 3:
        return fit(shown, n)
    return fit(shown[:-1], n - 1) + shown[-1]


def wrap(phrases: list[str], n: int, sep: str = "; ") -> list[str]:
    """Phrases joined by ``sep`` into lines of at most ``n`` columns, a line that goes on
    ending in ``sep`` without its trailing space (a phrase longer than a line is cut with an
    ellipsis)."""
    end = sep.rstrip()
    room = n - width(end)
    lines, line = [], ""
    for phrase in phrases:
        phrase = fit(phrase, room)
        if not line:
            line = phrase
        elif width(line + sep + phrase) <= room:
            line += sep + phrase
        else:
            lines.append(line + end)
            line = phrase
    return lines + ([line] if line else [])
