"""probe.basics and `probe basics` on a tiny LoRA pair: the log-prob pass against probe.score run
alone, lost / gained found from both models' real greedy answers, the same model twice changes
nothing, round trips, escaping, the CLI."""

import json
import math

import pytest

import probe
from probe import cli
from probe.models.tiny import save_tiny
from builders import EVIL, json_roundtrip, make_adapter


@pytest.fixture(scope="module")
def lora_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("basics-lora")
    base_dir = save_tiny(root / "base", "llama", "unigram", chat=True)
    return base_dir, make_adapter(base_dir, root / "adapter", seed=1)


@pytest.fixture(scope="module")
def pair(lora_dirs):
    base_dir, adapter = lora_dirs
    return probe.load_pair(str(base_dir), adapter=str(adapter))


def _pack(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


def test_expected_answer_log_probs_equal_probe_score_alone(pair):
    base, tuned = pair
    b = probe.basics(base, tuned, tags=["history", "colors"], generate=False)
    assert b.regression is None and len(b.scores) == 11
    specs = {c.id: c for c in b.cases()}
    for s in b.scores[:6]:
        spec = specs[s.id]
        for lm, got, greedy in ((base, s.base_logprob, s.base_greedy), (tuned, s.tuned_logprob, s.tuned_greedy)):
            alone = probe.score(lm, spec.prompt, spec.expected)
            # batched and padded vs alone: 1.4e-6 nats apart at most over 92 runs of this tiny pair
            assert math.isclose(got, sum(t.logprob for t in alone.steps), abs_tol=1e-5)
            assert greedy == all(t.rank == 1 for t in alone.steps)
            assert s.n_tokens == len(alone.steps)


def test_lost_and_gained_come_from_each_models_own_greedy_answer(pair, tmp_path):
    base, tuned = pair
    prompts = ["What is the capital of France?", "Name a color.", "Count to three."]
    b_text = [probe.generate(base, p, max_new_tokens=5, top_k=0).text for p in prompts]
    t_text = [probe.generate(tuned, p, max_new_tokens=5, top_k=0).text for p in prompts]
    assert b_text != t_text, "the adapter must change an answer for this test to mean anything"
    i = next(k for k in range(3) if b_text[k].strip() != t_text[k].strip())
    pack = _pack(tmp_path / "p.jsonl", [
        {"id": "lost-one", "prompt": prompts[i], "expected": b_text[i], "check": {"equals": b_text[i]}, "tags": ["a"]},
        {"id": "gained-one", "prompt": prompts[i], "expected": t_text[i], "check": {"equals": t_text[i]}, "tags": ["a"]},
        {"id": "kept-one", "prompt": prompts[i], "expected": "x", "check": {"regex": "[\\s\\S]*"}, "tags": ["b"]},
    ])
    b = probe.basics((base, tuned), pack=pack, max_new_tokens=5)
    assert b.lost("a") == ["lost-one"] and b.regression.cell("a", "gained") == ["gained-one"]
    assert b.regression.cell("b", "kept") == ["kept-one"]
    rows = {r["tag"]: r for r in b.table()}
    assert (rows["a"]["lost"], rows["a"]["gained"], rows["all"]["n"]) == (1, 1, 3)
    assert [c.id for c in b.cases(["gained-one"])] == ["gained-one"]
    assert json_roundtrip(b) == b
    assert "lost in a: 1/2: lost-one" in str(b)


def test_the_same_model_twice_drops_and_loses_nothing(lora_dirs):
    base_dir, _ = lora_dirs
    lm = probe.load(base_dir)
    b = probe.basics(lm, lm, tags=["history", "colors"], max_new_tokens=3)
    assert all(s.delta == 0 for s in b.scores) and b.dropped() == [] and b.lost() == []
    assert {r["tag"]: r["mean_delta"] for r in b.table()}["history"] == 0


def test_views_escape_pack_text_and_a_case_holds_the_result(pair, tmp_path):
    base, tuned = pair
    pack = _pack(tmp_path / "evil.jsonl", [{"id": "e", "prompt": EVIL, "expected": EVIL, "check": {"contains": EVIL},
                                            "tags": [EVIL]}])
    b = probe.basics(base, tuned, pack=pack, max_new_tokens=3)
    html = b._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    case = probe.Case.from_result(b)
    assert probe.Case.load(case.save(tmp_path / "c.json")).results["basics"] == b


def test_cli_prints_the_table_and_writes_a_case_and_report(lora_dirs, tmp_path, capsys):
    base_dir, adapter = lora_dirs
    out, report = tmp_path / "b.json", tmp_path / "b.html"
    code = cli.main(["basics", "--base", str(base_dir), "--adapter", str(adapter), "--tags", "history,colors",
                     "--max-new-tokens", "3", "--out", str(out), "--report", str(report)])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "history" in printed and "colors" in printed and "lost" in printed
    b = probe.Case.load(out).results["basics"]
    assert len(b.scores) == 5 + 6 and b.regression is not None
    assert 'class="probe-basics"' in report.read_text()
    assert cli.main(["basics", "--base", str(base_dir), "--adapter", str(adapter), "--tags", "nope"]) == 1
    assert "no case of the pack has tag 'nope'" in capsys.readouterr().err
