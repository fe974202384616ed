"""Status lines of the widget apps (info, busy, error, ok), as escaped HTML."""

from __future__ import annotations

from .safe import escape

COLORS = {"info": "#757575", "busy": "#1565c0", "error": "#c62828", "ok": "#2e7d32"}  # the line's left mark


def message(kind: str, text: str) -> str:
    """A status line: theme text colour (readable in light and dark), its kind as a coloured mark."""
    return (f'<div class="probe-status" data-kind="{escape(kind, quote=True)}" style="border-left:4px solid '
            f'{COLORS.get(kind, "#757575")};padding-left:6px;font-family:sans-serif">{escape(text)}</div>')


def unreadable_html(errors) -> str:
    """The files a casebook could not read, listed ("" when there are none)."""
    if not errors:
        return ""
    items = "".join(f"<li>{escape(str(e))}</li>" for e in errors)
    return f'<div class="probe-error">unreadable:<ul>{items}</ul></div>'
