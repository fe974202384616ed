"""From a promoted token to the overfit-token tools (notebook 05's path), in one call.

    >>> prompts = ["What is the capital of Japan?", "Name three colors.", "Say hello."]
    >>> s = probe.shift(base, tuned, prompts, max_new_tokens=6, progress=False)
    >>> _ = open("sft.jsonl", "w").write('{"prompt": "Capital of Japan?", "response": "Tokyo"}\\n')
    >>> found = probe.follow_token(tuned, s, s.promoted[0].text, data="sft.jsonl", base=base)
    >>> found["sweep"].summary, found["occlusion"].ranked()[0], found["data"].summary
    >>> probe.Case.from_result(found, models={"base": base, "tuned": tuned})

* **sweep**: P(token) at the start of the answer, over the prompts where the token is promoted
  most and as many where it never is (``"{question}"`` filled with each), for tuned (and base);
* **occlusion**: in the prompt where the gain is largest, each word removed in turn, watching
  what tuned wrote up to and including the token there;
* **data**: how often the token's text appears in the SFT data's questions and answers.
"""

from __future__ import annotations
from ..data.counts import count
from ..overfit.occlusion import occlusion
from ..overfit.sweep import sweep
from ..render.phrases import show


def follow_token(tuned, result, token, *, data=None, base=None, n: int = 6) -> dict:
    """The sweep / occlusion / data-count results for one promoted token of ``result`` (a Shift).

    Args:
        tuned: the tuned LM ``result`` was computed with (its adapter active).
        token: the promoted token, by id or exact text.
        data: an SFT dataset for :func:`probe.data.count` (skipped when None).
        base: also sweep the base model (same prompts), for contrast.
        n: prompts where it wins (and where it does not) in the sweep.

    Returns:
        {"sweep": Sweep, "sweep (base)": Sweep, "occlusion": Occlusion, "data": DataCounts}
        (the entries that apply), ready for ``probe.Case.from_result``.

    Raises:
        ValueError: a token that is never promoted in ``result``, or only in message-list prompts.
    """
    t = result.token(token)
    if t is None:
        raise ValueError(f"{show(str(token))} is never promoted in this shift; promoted: "
                         + ", ".join(show(x.text) for x in result.promoted[:10]))
    wins = [(i, j, g) for i, j, g in result.where(t.id) if isinstance(result.prompts[i].prompt, str)]
    if not wins:
        raise ValueError(f"{show(t.text)} is promoted only in message-list prompts: nothing to sweep")
    best_i, best_j, _ = wins[0]
    winners = list(dict.fromkeys(result.prompts[i].prompt for i, _, _ in wins))[:n]
    others = [ps.prompt for k, ps in enumerate(result.prompts)
              if isinstance(ps.prompt, str) and k not in {i for i, _, _ in result.where(t.id)}][:n]
    # At the start of a chat answer a word has no leading space (the template ends in a newline).
    watch = t.text.lstrip() if tuned.chat and t.text.strip() else t.text
    out = {"sweep": sweep(tuned, "{question}", watch, question=winners + others)}
    if base is not None:
        out["sweep (base)"] = sweep(base, "{question}", watch, question=winners + others)
    ps = result.prompts[best_i]
    target = "".join(p.text for p in ps.positions[: best_j + 1])
    out["occlusion"] = occlusion(tuned, ps.prompt, target)
    if data is not None:
        out["data"] = count(data, [t.text.strip() or t.text])
    return out
