"""Sentences written once, shown as plain text and as HTML.

A phrase is a tuple of pieces: plain words (``str``) and model or user text (:class:`Code`).
:func:`as_text` quotes the pieces of text with whitespace made visible (``repr``);
:func:`as_html` escapes everything and puts the pieces of text in ``<code>``. The views in
``text.py``, ``strip.py``, ``card.py`` and ``report.py`` build their shared sentences here.
"""

from __future__ import annotations

from .safe import escape

Phrase = tuple  # of str and Code


class Code(str):
    """A piece of model or user text inside a sentence."""


def p_text(p: float | None) -> str:
    """A probability in a notation that keeps small ones: 0.912, 0.0123, 1.4e-06, 0."""
    if p is None:
        return "?"
    if p == 0:
        return "0"
    return f"{p:.3g}" if p >= 0.01 else f"{p:.1e}"


def show(text: str) -> str:
    """A token's text with whitespace made visible, quoted."""
    return repr(str(text))


def as_text(phrase: Phrase) -> str:
    return "".join(show(p) if isinstance(p, Code) else p for p in phrase)


def as_html(phrase: Phrase) -> str:
    return "".join(f"<code>{escape(p)}</code>" if isinstance(p, Code) else escape(p) for p in phrase)


def trace_facts(trace) -> Phrase:
    return (f"{len(trace.steps)} tokens, total logprob {trace.total_logprob:.3f} "
            f"(mean {trace.mean_logprob:.3f})",)


def divergence_phrase(d) -> Phrase:
    """Where a model leaves a reference (a Divergence), or that it does not."""
    if not d.diverged:
        return ("No divergence: the model writes all of ", Code(d.reference), " greedily.")
    pref = d.preferred
    return (f"Diverges at token {d.index} (char {d.char_offset}) after ", Code(d.text_before),
            ": reference ", Code(d.step.text), f" has p={p_text(d.step.prob)}, rank {d.step.rank}; "
            "the model prefers ", Code(pref.text), f" (p={p_text(pref.prob)}).")


def parting_phrase(d) -> Phrase:
    """Where two generations part (a TraceDivergence), or that they do not."""
    if not d.diverged:
        return ("No divergence: both generations wrote the same text.",)
    return (f"The generations part at char {d.char_offset} after ", Code(d.text_before), ":")


def expected_phrase(d, model: str) -> Phrase | None:
    """A Diagnosis' P(expected) under ``model``, its rank, and where the model leaves it."""
    p = d.p_expected(model)
    if p is None:
        return None
    div = d.divergence(model)
    where = (("leaves it at ", Code(div.step.text), f" (rank {div.rank}), preferring ", Code(div.preferred.text))
             if div.diverged else ("would write it greedily",))
    return (f"{model}: P(expected)={p_text(p)} after the prompt, first-token rank {d.rank_expected(model)}; ", *where)


def comparison_phrase(c) -> Phrase:
    return (f"tuned - base = {c.delta_logprob:+.3f} nats over ", Code(c.target))


def parting_cell(where) -> str:
    """A :class:`probe.core.registry.Parting` as the "first divergent token" cell of a summary row."""
    if where is None:
        return ""
    if where.against == "expected":
        if not where.diverged:
            return "none (writes expected)"
        return f"{show(where.left)} -> {'?' if where.right is None else show(where.right)}"
    if not where.diverged:
        return "same as base"
    side = lambda text: "END" if text is None else show(text)  # noqa: E731
    return f"base {side(where.left)} / tuned {side(where.right)}"


def wrong_line(headline) -> str:
    """What went wrong, in one line, from a :class:`probe.core.registry.Headline`: what the tuned
    model writes where it leaves the expected answer (or the base's answer), and P(expected)."""
    if headline is None:
        return ""
    w, pt, pb = headline.where, headline.p_tuned, headline.p_base
    ps = "" if pt is None else f"P(expected) tuned {p_text(pt)}" + ("" if pb is None else f", base {p_text(pb)}")
    if w is None:
        return ps
    if w.against == "expected":
        said = ("tuned writes the expected answer greedily" if not w.diverged else
                f"tuned writes {'?' if w.right is None else show(w.right)} where {show(w.left)} was expected")
    elif not w.diverged:
        said = "tuned writes what base writes"
    else:
        said = (f"tuned {'stops' if w.right is None else 'writes ' + show(w.right)} where base "
                f"{'stops' if w.left is None else 'writes ' + show(w.left)}")
    return said + (f" ({ps})" if ps else "")


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def headline_cells(headline) -> list[str]:
    """A :class:`probe.core.registry.Headline` as table cells: where it goes wrong (unclipped),
    P(expected) base, P(expected) tuned."""
    if headline is None:
        return ["", "", ""]
    p = lambda x: "" if x is None else p_text(x)  # noqa: E731
    return [parting_cell(headline.where), p(headline.p_base), p(headline.p_tuned)]
