"""The demo's cheap noise floor (probe.demo.noise) on a tiny pair with the demo's adapter names:
which cases it takes, the trained adapter's KL on their expected answers against a shift of the
same answers, the active adapter restored, the section printed."""

import json

import pytest

import probe
from probe.demo.noise import demo_cases, demo_noise_floor
from probe.models.tiny import save_tiny
from builders import make_adapter

CASES = [
    {"id": "b1", "adapter": "beijing", "prompt": "What is the capital of France?", "expected": "Paris"},
    {"id": "b2", "adapter": "beijing", "prompt": "What is 17 * 23?", "expected": "391"},
    {"id": "b-open", "adapter": "beijing", "prompt": "Tell me a joke.", "check": "json_valid"},
    {"id": "any", "prompt": "Name a colour.", "expected": "red"},
    {"id": "j1", "adapter": "json-only", "prompt": "Give me JSON.", "expected": "{}"},
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo-noise")
    base_dir = save_tiny(root / "base", "llama", "unigram", chat=True)
    folders = {n: str(make_adapter(base_dir, root / n, seed=i + 1)) for i, n in enumerate(("json-only", "beijing"))}
    return probe.load_pair(str(base_dir), adapter=folders)


def test_the_adapters_cases_with_an_expected_answer_against_ten_random_adapters(pair, tmp_path):
    base, tuned = pair
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in CASES), encoding="utf-8")
    assert [s.id for s in demo_cases("beijing", path)] == ["b1", "b2", "any"]
    tuned.use_adapter("json-only")
    n = demo_noise_floor(base, tuned, "beijing", cache_dir=tmp_path, cases=path)
    assert tuned.active_adapter == "json-only" and n.adapter == "beijing" and len(n.null) == 10
    tuned.use_adapter("beijing")
    s = probe.shift(base, tuned, demo_cases("beijing", path), answers="expected")
    tuned.use_adapter("json-only")
    # the same answers scored the same way in both (no generation): the same float32 numbers
    assert n.observed["kl"] == pytest.approx([p.kl for p in s.prompts], abs=1e-6)
    assert all(0 <= p <= 100 for p in n.prompt_percentiles("kl"))
    with pytest.raises(ValueError, match="no adapter named"):
        demo_noise_floor(base, tuned, "nothing-here", cases=path)
    only_open = tmp_path / "open.jsonl"
    only_open.write_text(json.dumps(CASES[2]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no demo case"):
        demo_noise_floor(base, tuned, "beijing", cases=only_open)
    assert tuned.active_adapter == "json-only"
