"""Hand-built results for tests that need realistic shapes without running a model."""

import json
import math

import torch

from probe.cases.case import Case
from probe.diagnosis.result import Diagnosis, Run
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.shifts.map import Gain, PromptShift, Shift, ShiftPosition


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


def make_adapter(base_dir, out_dir, seed=0):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(out_dir)
    return out_dir


EVIL = '<script>alert("x")</script>'
EVIL_ATTR = '"><img src=x onerror=alert(1)>'


def _pos(j, text, rank, kl, promoted=()):
    alt = lambda t, lp: Alternative(7, t, math.exp(lp), lp)  # noqa: E731
    kind = "unshifted" if rank == 1 else ("marginal" if rank <= 3 else "shifted")
    return ShiftPosition(index=j, id=10 + j, text=text, tuned_logprob=-0.1, base_logprob=-3.0, tuned_rank=1,
                         base_rank=rank, kind=kind, kl=kl, tuned_top=(alt(text, -0.1), alt(EVIL_ATTR, -3.0)),
                         base_top=(alt(EVIL, -0.5),), promoted=tuple(promoted), demoted=())


def fake_shift() -> Shift:
    g = lambda t, i=99: Gain(i, t, 2.5, -0.2, -2.7)  # noqa: E731
    a = PromptShift(EVIL, "<r>", "ab", "greedy",
                    (_pos(0, EVIL, 1, 0.1, [g(EVIL)]), _pos(1, "\n", 5, 2.0, [g(EVIL), g(" Be", 5)])),
                    case_id="c<1>", tags=("t",))
    b = PromptShift([{"role": "user", "content": EVIL_ATTR}], "<r>", "c", "given",
                    (_pos(0, EVIL_ATTR, 2, 0.5, [g(" Be", 5)]),))
    return Shift((a, b), models={"base": EVIL, "tuned": "t"}, adapter=EVIL_ATTR)
