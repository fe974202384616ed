import json

from hypothesis import given, settings, strategies as st

import probe
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.diagnosis.divergence import Divergence, TraceDivergence
from strategies import hostile

HOSTILE = "<img src=x onerror=alert(1)>"


def _roundtrip(obj):
    data = json.loads(json.dumps(obj.to_dict()))
    return type(obj).from_dict(data)


def test_results_round_trip_through_json(gpt2_lm):
    s = probe.score(gpt2_lm, "The capital of France is", " Paris")
    g = probe.generate(gpt2_lm, "The capital", max_new_tokens=5, force=" of", watch=[" Paris"],
                       do_sample=True, seed=3)
    d = probe.first_divergence(gpt2_lm, "The capital of France is", " Paris")
    p = probe.first_divergence(s, g)
    for obj in (s, g, d, p):
        assert _roundtrip(obj) == obj


@settings(max_examples=50, deadline=None)
@given(text=hostile, prob=st.floats(0, 1), rank=st.integers(1, 10**6))
def test_hostile_text_round_trips_and_is_escaped(text, prob, rank):
    alt = Alternative(id=1, text=text, prob=prob, logprob=-1.0)
    step = TokenStep(index=0, id=1, text=text, start=0, end=len(text), logprob=-1.0, prob=prob,
                     rank=rank, entropy=0.5, top=(alt,), watch={text: 0.5})
    trace = TokenTrace(prompt=text, text=text, steps=(step,), model=text)
    assert _roundtrip(trace) == trace
    html = trace._repr_html_()
    assert "<img" not in html and "<script" not in html.replace("<style>", "")
    str(trace)  # the plain-text view never fails


def test_model_text_is_escaped_in_every_view():
    step = TokenStep(index=0, id=5, text=HOSTILE, start=0, end=len(HOSTILE), logprob=-0.1, prob=0.9,
                     rank=1, entropy=0.1, top=(Alternative(5, HOSTILE, 0.9, -0.1),))
    trace = TokenTrace(prompt=HOSTILE, text=HOSTILE, steps=(step,), model=HOSTILE)
    div = Divergence(True, HOSTILE, HOSTILE, 0, 0, step, trace)
    part = TraceDivergence(True, HOSTILE, 0, 0, 0, trace, trace)
    for view in (trace._repr_html_(), div._repr_html_(), part._repr_html_()):
        assert "<img" not in view and "&lt;img" in view


def test_str_shows_tokens_probabilities_and_flags(gpt2_lm):
    g = probe.generate(gpt2_lm, "The capital", max_new_tokens=3, force=" of")
    text = str(g)
    assert "TokenTrace[generate]" in text and "[F]" in text and "stopped: length" in text
