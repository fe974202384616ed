"""Hand-built results for tests that need realistic shapes without running a model."""

import json

from probe.case import Case
from probe.diagnosis import Diagnosis, Run
from probe.results import Alternative, TokenStep, TokenTrace


def fake_trace(words, *, kind="generate", model="m", prob=0.5, forced=0) -> TokenTrace:
    steps, start = [], 0
    for i, w in enumerate(words):
        top = tuple(Alternative(100 + k, f"{w}{k}", prob / (k + 1), -1.0 - k) for k in range(5))
        steps.append(TokenStep(index=i, id=100 + i, text=w, start=start, end=start + len(w),
                               logprob=-0.7, prob=prob, rank=1 + i % 3, entropy=1.5, top=top,
                               forced=i < forced))
        start += len(w)
    return TokenTrace(prompt="prompt", text="".join(words), steps=tuple(steps), kind=kind, model=model,
                      stop_reason="length" if kind == "generate" else None)


def fake_diagnosis(case_id: str, verdict: str = "lost", n_tokens: int = 48, word: str = " tok",
                   tags=("capitals",)) -> Diagnosis:
    words = [word] * n_tokens
    runs = tuple(Run(name, model, force, fake_trace(words, model=model, forced=2 if force else 0),
                     name == "base", f"{name} says why")
                 for name, model, force in (("tuned", "tuned", ""), ("tuned_forced", "tuned", " The"),
                                            ("base", "base", ""), ("base_forced", "base", " The")))
    expected = fake_trace([" Pa", "ris"], kind="score")
    return Diagnosis(verdict=verdict, prompt=f"What is the capital of {case_id}?", base_prompt="The capital is",
                     expected=" Paris", force=" The", check="contains ' Paris'", runs=runs,
                     expected_traces={"tuned": expected, "base": expected}, case_id=case_id, tags=tuple(tags),
                     models={"base": "base", "tuned": "tuned"})


def fake_case(case_id: str, verdict: str = "lost", tags=("capitals",), note: str = "", **kw) -> Case:
    return Case.from_result(fake_diagnosis(case_id, verdict, tags=tags, **kw), id=case_id, note=note)


def json_roundtrip(obj):
    """``obj`` through strict JSON (no NaN) and back with its own ``from_dict``."""
    return type(obj).from_dict(json.loads(json.dumps(obj.to_dict(), allow_nan=False)))
