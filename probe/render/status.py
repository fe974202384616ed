"""Status lines of the widget apps (info, busy, error, ok), as escaped HTML."""

from __future__ import annotations

from .safe import escape

COLORS = {"info": "#555", "busy": "#1565c0", "error": "#c62828", "ok": "#2e7d32"}


def message(kind: str, text: str) -> str:
    return f'<div style="color:{COLORS.get(kind, "#333")};font-family:sans-serif">{escape(text)}</div>'


def unreadable_html(errors) -> str:
    """The files a casebook could not read, listed ("" when there are none)."""
    if not errors:
        return ""
    items = "".join(f"<li>{escape(str(e))}</li>" for e in errors)
    return f'<div style="color:#c62828">unreadable:<ul>{items}</ul></div>'
