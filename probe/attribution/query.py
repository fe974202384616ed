"""What went wrong, as one number to differentiate: the query of an attribution.

    q = query_of(tuned, {"prompt": "What is the capital of Japan?", "expected": "Tokyo"})
    q.kind, q.expected_text, q.wrong_text   # ('contrast', 'To', 'Be') on the demo's beijing adapter

Two kinds, both "badness" (higher is worse), so a positive influence always means "a training
step on this example made the case worse":

* ``"contrast"`` (the default): at the first divergent token of the expected answer,
  ``log P(wrong) - log P(expected)`` under the tuned model. The divergent token is the first
  expected token the tuned model does not rank first, and ``wrong`` the token it ranks first
  there; with an explicit wrong answer, the first token where the wrong answer's tokens part
  from the expected answer's (both encoded after the same prompt, so the shared prefix is
  the same ids).
* ``"loss"``: the expected answer's mean token loss, ``-mean log P(expected token)``.

A case is anything that says a prompt and an expected answer: a registered result (through
the registry's ``inputs``: a Diagnosis, an EvalFlip, ...), an object with ``prompt`` and
``expected`` attributes (a Case, an ExampleCase), a dict, or a ``(prompt, expected[, wrong])``
tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import registry
from ..core.vocab import AttributionQuery, words
from ..engine.forward import accepts_logits_to_keep
from ..engine.prompts import encode, render

KINDS = words(AttributionQuery)


@dataclass(frozen=True)
class Query:
    """One case as the attribution differentiates it."""

    kind: str  # "contrast" | "loss"
    prompt: object  # str or messages, as given
    expected: str
    wrong: str | None  # the wrong answer given (None: the tuned model's preferred token)
    title: str
    ids: tuple[int, ...]  # prompt + expected answer, as the model reads them
    n_prompt: int  # ids[n_prompt:] are the expected answer's tokens
    position: int | None  # contrast: index in ids of the divergent expected token
    expected_id: int | None  # contrast: the expected token there
    wrong_id: int | None  # contrast: the wrong token there
    expected_text: str | None = None
    wrong_text: str | None = None

    @property
    def answer_ids(self) -> tuple[int, ...]:
        """The answer tokens the case's hidden state is taken over: the expected answer up to
        the divergent token, then the wrong token (contrast); the expected answer (loss)."""
        if self.kind == "contrast":
            return tuple(self.ids[self.n_prompt:self.position]) + (self.wrong_id,)
        return tuple(self.ids[self.n_prompt:])

    @property
    def wrong_answer(self) -> str:
        """The wrong answer as text: what the lexical method searches for."""
        if self.wrong is not None:
            return self.wrong
        return self.wrong_text or ""


def case_inputs(case) -> dict:
    """{"prompt", "expected", "wrong", "title"} of anything that says them (module docstring)."""
    if isinstance(case, tuple):
        if len(case) not in (2, 3):
            raise ValueError("a case tuple is (prompt, expected) or (prompt, expected, wrong)")
        return {"prompt": case[0], "expected": case[1], "wrong": case[2] if len(case) == 3 else None,
                "title": ""}
    if isinstance(case, dict):
        found = dict(case)
    else:
        try:
            found = registry.type_of(case).inputs_of(case)
        except TypeError:
            found = {k: getattr(case, k) for k in ("prompt", "expected", "wrong", "title", "id")
                     if hasattr(case, k)}
            if "line" in found or hasattr(case, "line"):
                found.setdefault("title", f"line {case.line}")
    prompt, expected = found.get("prompt"), found.get("expected")
    if prompt is None or not isinstance(expected, str) or not expected:
        raise ValueError(f"a {type(case).__name__} gives no prompt and expected answer to attribute "
                         "(give prompt= and expected=, or a result that says them)")
    title = found.get("title") or found.get("id") or ""
    return {"prompt": prompt, "expected": expected, "wrong": found.get("wrong"), "title": str(title)}


def tail_logits(lm, ids, start: int) -> torch.Tensor:
    """(len(ids) - start, vocab) float32 logits predicting the tokens ids[start:] (position t - 1
    predicts token t; ``start`` >= 1), one sequence, no padding. Only the positions from
    ``start - 1`` on go through the head when the model takes ``logits_to_keep``: memory grows
    with the scored tokens, not the whole sequence. Differentiable (the caller picks no_grad)."""
    x = torch.tensor([list(ids)], device=lm.device)
    keep = len(ids) - start + 1
    kw = {"logits_to_keep": keep} if accepts_logits_to_keep(lm.model) else {}
    logits = lm.model(input_ids=x, attention_mask=torch.ones_like(x), **kw).logits[0]
    return logits[-keep:-1].float()


@torch.no_grad()
def _logprobs(lm, ids: list[int], start: int) -> torch.Tensor:
    with lm.active():
        return torch.log_softmax(tail_logits(lm, ids, start), -1)


def query_of(lm, case, *, kind: str = "contrast", wrong: str | None = None) -> Query:
    """The query of ``case`` under ``lm`` (the tuned model).

    Raises:
        ValueError: an unknown kind, a case with no prompt/expected answer, a wrong answer that
            does not part from the expected one, or (contrast without a wrong answer) a tuned
            model that ranks every expected token first: there is nothing wrong to attribute;
            use ``kind="loss"``.
    """
    if kind not in KINDS:
        raise ValueError(f"query must be one of {KINDS}, got {kind!r}")
    got = case_inputs(case)
    wrong = wrong if wrong is not None else got["wrong"]
    rendered = render(lm, got["prompt"])
    enc = encode(lm, rendered, got["expected"])
    ids, n = list(enc.ids), enc.n_prompt
    base = dict(kind=kind, prompt=got["prompt"], expected=got["expected"], wrong=wrong, title=got["title"],
                ids=tuple(ids), n_prompt=n)
    if kind == "loss":
        return Query(position=None, expected_id=None, wrong_id=None, **base)
    if wrong is not None:
        other = list(encode(lm, rendered, wrong).ids)
        at = next((i for i in range(n, min(len(ids), len(other))) if ids[i] != other[i]), None)
        if at is None:
            raise ValueError(f"the wrong answer {wrong!r} does not part from the expected answer "
                             f"{got['expected']!r} at any token")
        pos, wid = at, other[at]
    else:
        lp = _logprobs(lm, ids, n)  # (answer tokens, vocab)
        pos = wid = None
        for j, t in enumerate(ids[n:]):
            best = int(lp[j].argmax())
            if best != t:
                pos, wid = n + j, best
                break
        if pos is None:
            raise ValueError(f"the tuned model ranks every token of {got['expected']!r} first: nothing "
                             "went wrong to contrast; attribute its loss with query='loss'")
    return Query(position=pos, expected_id=ids[pos], wrong_id=wid, expected_text=lm.token_text(ids[pos]),
                 wrong_text=lm.token_text(wid), **base)


def query_value(lm, q: Query) -> torch.Tensor:
    """The query's value under ``lm`` as a differentiable scalar (float32; no ``no_grad``).

    contrast: log P(wrong) - log P(expected) at the divergent token; loss: the expected
    answer's mean token loss."""
    if q.kind == "contrast":
        lp = torch.log_softmax(tail_logits(lm, q.ids[:q.position + 1], q.position)[0], -1)
        return lp[q.wrong_id] - lp[q.expected_id]
    lp = torch.log_softmax(tail_logits(lm, q.ids, q.n_prompt), -1)
    targets = torch.tensor(q.ids[q.n_prompt:], device=lp.device)
    return -lp.gather(-1, targets[:, None]).mean()
