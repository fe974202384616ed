"""Hypothesis strategies for hostile strings."""

from hypothesis import strategies as st

PIECES = [
    " ", "  ", "\n", "\n\n", "\t", " \n", "😀", "👩‍💻", "東京", "中文", "e\u0301", "n\u0303",
    "مرحبا", "\u200f", "שלום", "Paris", " Paris", "capital", " of", "{", "}", "\"", "<", ">",
    "&amp;", "<img src=x>", "```json\n", "0.5", "Ω", "ß", "\u00a0",
]

hostile = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.text(min_size=1, max_size=12),
)
