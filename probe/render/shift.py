"""Shift results as text and escaped HTML (filled in below)."""

from __future__ import annotations


def shift_text(s) -> str:
    return f"Shift: {len(s.prompts)} prompts, {s.n_positions} positions"


def shift_html(s) -> str:
    from html import escape

    return f"<pre>{escape(shift_text(s))}</pre>"
