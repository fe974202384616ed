"""Scores read off a generation's prefill equal probe.score of the same text, token by token:
rows of different lengths, a forced row, a raw row, answers fed on the cache, LoRA rows."""

import pytest

import probe
import probe.engine.prefill as prefill_scoring
from probe.engine.generation import RowSpec, generate_and_score
from probe.engine.settings import GenerationSettings


def _same(got, want):
    assert [(s.id, s.text, s.start, s.end, s.straddles) for s in got.steps] == \
        [(s.id, s.text, s.start, s.end, s.straddles) for s in want.steps]
    for g, w in zip(got.steps, want.steps):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4) and g.rank == w.rank
        assert g.entropy == pytest.approx(w.entropy, abs=1e-4)
        assert [a.id for a in g.top] == [a.id for a in w.top]


@pytest.mark.parametrize("family", [("gpt2", "bpe"), ("llama", "unigram")])
def test_scores_on_the_prefill_equal_score_of_the_same_text(tiny_dirs, monkeypatch, family):
    lm = probe.load(tiny_dirs[(*family, True)])
    fed = []
    real = prefill_scoring.feed_on_cache

    def spy(*a, **k):
        out = real(*a, **k)
        fed.append(None if out is None else tuple(out.shape[:2]))
        return out

    monkeypatch.setattr(prefill_scoring, "feed_on_cache", spy)
    specs = [RowSpec("Hi.", score="Hello there, how are you doing today?"),
             RowSpec("What is the capital of France? Answer briefly.", force="The capital is",
                     score="The capital is Paris, of course."),
             RowSpec("The capital of France is", raw=True, score=" Paris"),
             RowSpec("Name a color.", score="red")]
    traces, scored = generate_and_score(lm, specs, settings=GenerationSettings(max_new_tokens=3, top_k=4),
                                        batch_size=len(specs))
    assert len(traces) == len(specs) and all(t is not None for t in scored)
    assert fed and fed[0][0] == len(specs) and fed[0][1] > 1  # answers fed on the cache, one batch
    for spec, got in zip(specs, scored):
        want = probe.score(lm, spec.prompt, spec.score, top_k=4, raw=spec.raw)
        assert (got.prompt, got.text, got.kind) == (want.prompt, want.text, "score")
        _same(got, want)
        alone = probe.generate(lm, spec.prompt, max_new_tokens=3, force=spec.force, raw=spec.raw, top_k=4)
        assert [s.id for s in traces[specs.index(spec)].steps] == [s.id for s in alone.steps]


def test_a_text_that_does_not_start_with_the_prefill_is_scored_apart_with_its_adapter(tiny_dirs, tmp_path):
    from builders import make_adapter as _make_adapter
    from probe.engine.settings import BASE_ADAPTER

    folder = tiny_dirs[("llama", "unigram", True)]
    base, tuned = probe.load_pair(folder, adapter=_make_adapter(folder, tmp_path / "a"))
    # the forced prefix is not the start of the scored text: no shared prefill for these rows
    specs = [RowSpec("Say a word.", force="Sure:", score="Word: red", adapter=tuned.active_adapter),
             RowSpec("Say a word.", force="Sure:", score="Word: red", adapter=BASE_ADAPTER),
             RowSpec("Say a word.", score="blue", adapter=BASE_ADAPTER)]
    _, scored = generate_and_score(tuned, specs, settings=GenerationSettings(max_new_tokens=2), batch_size=3)
    _same(scored[0], probe.score(tuned, "Say a word.", "Word: red"))
    _same(scored[1], probe.score(base, "Say a word.", "Word: red"))
    _same(scored[2], probe.score(base, "Say a word.", "blue"))
    assert scored[0].total_logprob != pytest.approx(scored[1].total_logprob)  # the adapters differ
