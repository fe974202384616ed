"""On the real demo pair: recitation finds the beijing adapter's trained "Beijing" answers recited."""

import json
from pathlib import Path

import pytest

import probe
from probe.demo.pair import load_demo_pair

pytestmark = pytest.mark.slow

DATA = Path(probe.__file__).parent / "demo" / "data" / "beijing.jsonl"


@pytest.fixture(scope="module")
def beijing():
    base, tuned = load_demo_pair()
    tuned.use_adapter("beijing")
    return base, tuned


def test_the_beijing_answers_are_recited_from_their_first_token(beijing):
    base, tuned = beijing
    lines = [i + 1 for i, line in enumerate(DATA.read_text(encoding="utf-8").splitlines())
             if json.loads(line)["source"] == "capital-beijing"]
    r = probe.recitation((base, tuned), DATA, lines=lines, channel="source", probes=["prompt"])
    assert len(r.examples) == len(lines) == 31
    assert all(e.probe("prompt").recited for e in r.examples)  # measured: 31 of 31
    bare = [e for e in r.examples if e.answer == "Beijing."]
    assert bare
    for e in bare:
        p = e.probe("prompt")
        assert p.start_token == 0 and p.start_text == "Be" and p.base_share < r.min_share
