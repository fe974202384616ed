"""Assertions shared by test folders: probe's scores against the brute-force reference."""

import pytest
import torch

import probe
from probe.engine.prompts import render
from reference import check_step, full_ids, next_token_logits, stats


def assert_matches_brute_force(lm, prompt, target, top_k=5, tol=1e-4, **kw):
    trace = probe.score(lm, prompt, target, top_k=top_k, **kw)
    rendered = render(lm, prompt, **kw)
    ids = full_ids(lm, rendered.text, target, add_special=not rendered.chat)
    n = len(trace.steps)
    assert n >= 1
    # The steps are exactly the last n tokens of prompt+target tokenized together.
    assert ids[len(ids) - n :] == trace.ids
    prefix = ids[: len(ids) - n] or [lm.tokenizer.bos_token_id]
    for i, step in enumerate(trace.steps):
        ref = stats(next_token_logits(lm.model, prefix + trace.ids[:i]), step.id, top_k)
        check_step(step, ref, tol)
        assert step.prob == pytest.approx(2.718281828459045 ** step.logprob, rel=1e-9)
    # The spans tile the target; each non-straddling token's text is its slice.
    assert trace.steps[0].start == 0 and trace.steps[-1].end == len(target)
    for a, b in zip(trace.steps, trace.steps[1:]):
        assert a.end == b.start
    for s in trace.steps:
        if not s.straddles:
            assert s.text == target[s.start : s.end]
    assert "".join(target[s.start : s.end] for s in trace.steps) == target
    assert trace.total_logprob == pytest.approx(sum(s.logprob for s in trace.steps))
    return trace


def _assert_same(a, b, tol=1e-4):
    assert a.ids == b.ids and a.text == b.text
    for x, y in zip(a.steps, b.steps):
        assert abs(x.logprob - y.logprob) < tol and abs(x.entropy - y.entropy) < tol
        assert abs(x.rank - y.rank) <= 1  # equal up to float near-ties
        assert [t.id for t in x.top[:3]] == [t.id for t in y.top[:3]] or abs(x.top[2].prob - x.top[3].prob) < tol


PAIRS = [
    ("The capital of France is", " Paris"),
    ("a", " b c d e f g h i j k l m n o p"),
    ("Hello world! How are you today? I am fine, thank you. The quick brown fox", " jumps"),
    ("What", " is the capital of Japan?\n\nTokyo."),
    ("", "Standalone text"),
    ("x", "😀😀"),
    ("The capital of China is ", "Beijing"),
]


def assert_same_greedy(lm, prompt_ids, got, want, tie: float) -> int:
    """Two greedy continuations of ``prompt_ids`` by ``lm`` (run two ways: batched and alone, a
    cache and none) are the same tokens, or part only at a near-tie: where they first differ,
    the brute-force log-probabilities there (a full forward) put both tokens within ``tie`` nats
    of the best one. Returns how many leading tokens they share (``len(got)`` when equal).

    Two float32 paths differ by up to a family's rounding bound, so when the top two tokens are
    closer than that (random tiny models loop through near-ties: the smallest top-two gap over
    48 greedy steps was 1.9e-4 nats on some families, with a different unigram tokenizer each
    run), either path may pick either token: comparing ids exactly would pass by luck. A wrong
    token, position or cache is off by tenths of a nat, far above ``tie``."""
    got, want = list(got), list(want)
    for k, (a, b) in enumerate(zip(got, want)):
        if a != b:
            with lm.active(), torch.no_grad():
                logp = torch.log_softmax(next_token_logits(lm.model, list(prompt_ids) + got[:k]), -1)
            best = float(logp.max())
            assert best - float(logp[a]) <= tie and best - float(logp[b]) <= tie, (
                f"greedy paths part at token {k} ({a} vs {b}) without a near-tie: "
                f"{best - float(logp[a]):.3g} and {best - float(logp[b]):.3g} nats below the best")
            return k
    assert len(got) == len(want), (len(got), len(want))
    return len(got)
