"""The closed vocabularies (probe.vocab) name the words the code really uses."""

import probe
from probe.core import vocab
from probe.diagnosis.result import VERDICTS, verdict_of
from probe.widgets.explorer import MODES


def test_verdicts_are_the_four_diagnose_gives():
    assert vocab.words(vocab.Verdict) == VERDICTS + ("uncertain",)  # uncertain: sampled runs only
    given = {verdict_of({"tuned": a, "tuned_forced": b, "base": c})
             for a in (True, False) for b in (True, False) for c in (True, False)}
    assert given == set(VERDICTS)


def test_explorer_modes_and_trace_kinds_come_from_the_vocabulary(gpt2_lm):
    assert MODES == vocab.words(vocab.ExplorerMode)
    t = probe.score(gpt2_lm, "Hello", " world")
    g = probe.generate(gpt2_lm, "Hello", max_new_tokens=2)
    assert {t.kind, g.kind} == set(vocab.words(vocab.Kind))
    assert g.stop_reason in vocab.words(vocab.StopReason) and t.stop_reason is None
