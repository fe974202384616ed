"""Lexical overlap: BM25 of each training example's text against the case's prompt + wrong answer.

The library is ``bm25s`` (the ``attribution`` extra), Lucene's BM25 (k1 = 1.5, b = 0.75) over
its own tokenizer (lowercase words of two characters or more, English stop words removed). An
example's text is what its record says (message contents, prompt and completion, or text),
without the chat template's markup, which every example shares.
"""

from __future__ import annotations

import torch


class AttributionExtraMissing(ImportError):
    """bm25s is not installed: the lexical method needs the ``attribution`` extra."""


def _bm25s():
    try:
        import bm25s
    except ImportError as err:
        raise AttributionExtraMissing(
            "the lexical method needs bm25s: pip install 'token-probe[attribution]' "
            f"(or leave 'lexical' out of methods=) ({err})") from None
    return bm25s


def record_text(record) -> str:
    """The words of a parsed record (:class:`probe.train.masks.Record`), markup left out."""
    if record.shape == "text":
        return record.text
    if record.shape == "messages":
        return "\n".join(m["content"] for m in record.messages)
    if isinstance(record.prompt, str):
        return record.prompt + record.completion
    return "\n".join(m["content"] for m in (*record.prompt, *record.completion))


def prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)


def lexical_scores(texts: list[str], queries: list[str], *, k1: float = 1.5, b: float = 0.75) -> torch.Tensor:
    """(examples x queries) float64 BM25 scores."""
    bm25s = _bm25s()
    corpus = bm25s.tokenize(texts, return_ids=False, stopwords="en", show_progress=False)
    retriever = bm25s.BM25(method="lucene", k1=k1, b=b)
    retriever.index(corpus, show_progress=False)
    out = torch.zeros(len(texts), len(queries), dtype=torch.float64)
    for j, q in enumerate(queries):
        words = bm25s.tokenize([q], return_ids=False, stopwords="en", show_progress=False)[0]
        if words:
            out[:, j] = torch.tensor(retriever.get_scores(words), dtype=torch.float64)
    return out
