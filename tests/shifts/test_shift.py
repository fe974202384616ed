"""probe.shift against a brute-force reference: one full forward per prefix, float64."""

import math

import pytest
import torch

import probe
from probe.diagnosis.run import CaseSpec
from probe.engine.prompts import encode, encode_prompt, render
from probe.shifts.map import Shift, classify
from probe.models.tiny import save_tiny
from builders import json_roundtrip

PROMPTS = ["The capital of France is", "def add(a, b):", "Once upon a time", "x"]


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """Two separate tiny GPT-2 checkpoints with the same tokenizer, different weights."""
    a = save_tiny(tmp_path_factory.mktemp("base"), "gpt2", "bpe", seed=0)
    b = save_tiny(tmp_path_factory.mktemp("tuned"), "gpt2", "bpe", seed=1)
    return probe.load(a), probe.load(b)


@pytest.fixture(scope="module")
def lora_pair(tiny_dirs, tmp_path_factory):
    from builders import make_adapter as _make_adapter

    base_dir = tiny_dirs[("llama", "unigram", True)]
    return probe.load_pair(base_dir, adapter=_make_adapter(base_dir, tmp_path_factory.mktemp("a")))


@torch.no_grad()
def _ref_logits(lm, ids):
    """float64 logits of the token after ``ids``, one full forward, as this handle runs."""
    with lm.active():
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0, -1].double()


def _ref_greedy(lm, ids, n):
    out = []
    for _ in range(n):
        tok = int(_ref_logits(lm, ids + out).argmax())
        out.append(tok)
        if tok in lm.eos_ids:
            break
    return out


def _check_against_reference(s, base, tuned, full, min_gain, min_prob, marginal=3):
    for ps, (ids, n_prompt) in zip(s.prompts, full):
        assert [p.id for p in ps.positions] == ids[n_prompt:]
        for j, p in enumerate(ps.positions):
            lt = torch.log_softmax(_ref_logits(tuned, ids[: n_prompt + j]), -1)
            lb = torch.log_softmax(_ref_logits(base, ids[: n_prompt + j]), -1)
            tok = ids[n_prompt + j]
            assert p.index == j
            assert p.tuned_logprob == pytest.approx(float(lt[tok]), abs=1e-4)
            assert p.base_logprob == pytest.approx(float(lb[tok]), abs=1e-4)
            lo = 1 + int((lb > lb[tok] + 1e-5).sum())
            hi = 1 + int((lb > lb[tok] - 1e-5).sum())
            assert lo <= p.base_rank <= hi
            assert p.kind == classify(p.base_rank, marginal)
            kl = float((lt.exp() * (lt - lb)).sum())
            assert p.kl == pytest.approx(kl, abs=2e-5, rel=1e-4)
            assert [a.logprob for a in p.tuned_top] == pytest.approx(torch.topk(lt, 5).values.tolist(), abs=1e-4)
            assert [a.logprob for a in p.base_top] == pytest.approx(torch.topk(lb, 5).values.tolist(), abs=1e-4)
            gain = lt - lb
            ok = (gain >= min_gain) & (lt >= math.log(min_prob) if min_prob else torch.ones_like(gain, dtype=bool))
            want = sorted(gain[ok].tolist(), reverse=True)[: s.settings["promote_k"]]
            assert [g.gain for g in p.promoted] == pytest.approx(want, abs=1e-4)
            for g in p.promoted:
                assert g.gain == pytest.approx(float(gain[g.id]), abs=1e-4)
                assert g.tuned_logprob == pytest.approx(float(lt[g.id]), abs=1e-4)
            ok = (-gain >= min_gain) & (lb >= math.log(min_prob) if min_prob else torch.ones_like(gain, dtype=bool))
            want = sorted((-gain[ok]).tolist(), reverse=True)[: s.settings["promote_k"]]
            assert [-g.gain for g in p.demoted] == pytest.approx(want, abs=1e-4)


def test_greedy_shift_of_two_checkpoints_matches_full_forward_per_prefix(two_checkpoints):
    base, tuned = two_checkpoints
    s = probe.shift(base, tuned, PROMPTS, max_new_tokens=6, min_gain=0.0, min_prob=0.0, batch_size=3)
    full = []
    for prompt in PROMPTS:
        pids = encode_prompt(tuned, render(tuned, prompt))
        full.append((pids + _ref_greedy(tuned, pids, 6), len(pids)))
    _check_against_reference(s, base, tuned, full, 0.0, 0.0)
    assert all(ps.source == "greedy" for ps in s.prompts)
    assert s.n_positions == sum(len(i) - n for i, n in full)


def test_lora_pair_shift_runs_one_batch_and_matches_reference(lora_pair):
    base, tuned = lora_pair
    calls = []
    hook = tuned.model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw.get("adapter_names")),
                                                 with_kwargs=True)
    answers = ["Paris, of course.", " 3 + 4", "there was a cat", "y"]
    try:
        s = probe.shift(base, tuned, PROMPTS, answers=answers, min_gain=0.5, min_prob=0.001, marginal=2)
    finally:
        hook.remove()
    assert ["default"] * 4 + ["__base__"] * 4 in calls  # both models in one batch
    full = []
    for prompt, answer in zip(PROMPTS, answers):
        e = encode(tuned, render(tuned, prompt), answer)
        full.append((e.ids, e.n_prompt))
    _check_against_reference(s, base, tuned, full, 0.5, 0.001, marginal=2)
    assert [ps.answer for ps in s.prompts] == answers and {ps.source for ps in s.prompts} == {"given"}
    assert "".join(p.text for p in s.prompts[0].positions).endswith("Paris, of course.")


def test_same_model_twice_is_all_unshifted_with_zero_kl(two_checkpoints):
    _, tuned = two_checkpoints
    s = probe.shift(tuned, tuned, PROMPTS, max_new_tokens=4)
    assert s.shifted_ratio == 0.0 and s.class_counts["unshifted"] == s.n_positions
    assert max(p.kl for p in s.positions) < 1e-6
    assert s.promoted == () and s.demoted == ()


def test_corpus_numbers_are_the_positions_aggregated(two_checkpoints):
    base, tuned = two_checkpoints
    s = probe.shift(base, tuned, PROMPTS, max_new_tokens=5, min_gain=0.0, min_prob=0.0, marginal=1)
    pos = s.positions
    assert s.shifted_ratio == pytest.approx(sum(p.base_rank > 1 for p in pos) / len(pos))
    assert s.class_counts["marginal"] == 0  # marginal=1: rank 1 or shifted
    curve = s.kl_by_position()
    for j, (mean, n) in enumerate(curve):
        at = [ps.positions[j].kl for ps in s.prompts if len(ps.positions) > j]
        assert n == len(at) and mean == pytest.approx(sum(at) / len(at))
    by = s.classes_by_position()
    assert sum(sum(c.values()) for c in by) == len(pos)
    # promoted: count = positions where the token is among the per-position promoted
    top = s.promoted[0]
    hits = [(i, p.index) for i, ps in enumerate(s.prompts) for p in ps.positions if top.id in {g.id for g in p.promoted}]
    assert top.count == len(hits) and sorted(top.at) == sorted(hits)
    assert all(top.count >= t.count for t in s.promoted)
    assert s.where(top.text)[0][2] == max(g for *_, g in s.where(top.id))
    assert s.token(top.id) == top and s.token("no such token text") is None


def test_expected_answers_come_from_case_specs(two_checkpoints):
    base, tuned = two_checkpoints
    specs = [CaseSpec(id="a", prompt="The capital of France is", expected=" Paris", tags=("geo",)),
             CaseSpec(id="b", prompt="x", expected=" y z", tags=("misc",))]
    s = probe.shift(base, tuned, specs, answers="expected")
    assert [(ps.case_id, ps.tags, ps.answer, ps.source) for ps in s.prompts] == [
        ("a", ("geo",), " Paris", "expected"), ("b", ("misc",), " y z", "expected")]
    with pytest.raises(ValueError, match="no expected answer"):
        probe.shift(base, tuned, [CaseSpec(id="c", prompt="x", check="json_valid")], answers="expected")


def test_shift_round_trips_and_bad_input_is_named(two_checkpoints):
    base, tuned = two_checkpoints
    s = probe.shift(base, tuned, PROMPTS[:2], max_new_tokens=3, min_gain=0.0, min_prob=0.0)
    back = json_roundtrip(s)
    assert back == s and isinstance(back, Shift)
    assert back.promoted == s.promoted
    with pytest.raises(ValueError, match="no prompts"):
        probe.shift(base, tuned, [])
    with pytest.raises(ValueError, match="marginal"):
        probe.shift(base, tuned, PROMPTS, marginal=0)
    with pytest.raises(ValueError, match="2 answers for 4 prompts"):
        probe.shift(base, tuned, PROMPTS, answers=["a", "b"])
    with pytest.raises(TypeError, match="prompt 0"):
        probe.shift(base, tuned, [3])
    with pytest.raises(ValueError, match="answer 1"):
        probe.shift(base, tuned, PROMPTS[:2], answers=["a", ""])


def test_different_vocabularies_are_refused(two_checkpoints, llama_lm):
    with pytest.raises(ValueError, match="vocabularies|tokenizers"):
        probe.shift(two_checkpoints[0], llama_lm, PROMPTS)


def test_rows_are_read_in_chunks_never_all_positions_at_once(two_checkpoints, monkeypatch):
    import probe.shifts.stats as ss

    base, tuned = two_checkpoints
    seen = []
    real = ss.logit_rows
    monkeypatch.setattr(ss, "CHUNK_ELEMENTS", 3 * 600)  # 3 rows of the tiny vocab per chunk
    monkeypatch.setattr(ss, "logit_rows", lambda lg, idx: seen.append(len(idx)) or real(lg, idx))
    s = probe.shift(base, tuned, PROMPTS, max_new_tokens=6, min_gain=0.0, min_prob=0.0)
    assert max(seen) <= 3 and sum(seen) == 2 * s.n_positions
    monkeypatch.undo()
    again = probe.shift(base, tuned, PROMPTS, max_new_tokens=6, min_gain=0.0, min_prob=0.0)
    for a, b in zip(s.positions, again.positions):
        assert a.kl == pytest.approx(b.kl, abs=1e-6) and a.base_rank == b.base_rank


def test_follow_token_opens_sweep_occlusion_and_data_counts(two_checkpoints, tmp_path):
    base, tuned = two_checkpoints
    s = probe.shift(base, tuned, PROMPTS, max_new_tokens=4, min_gain=0.0, min_prob=0.0)
    top = s.promoted[0]
    sft = tmp_path / "sft.jsonl"
    sft.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    found = probe.follow_token(tuned, s, top.id, data=sft, base=base, n=2)
    assert set(found) == {"sweep", "sweep (base)", "occlusion", "data"}
    winners = list(dict.fromkeys(s.prompts[i].prompt for i, _, _ in s.where(top.id)))[:2]
    assert [r.values[0] for r in found["sweep"].rows][: len(winners)] == winners
    i, j, _ = s.where(top.id)[0]
    assert found["occlusion"].target == "".join(p.text for p in s.prompts[i].positions[: j + 1])
    case = probe.Case.from_result(found)
    assert len(case.results) == 4
    with pytest.raises(ValueError, match="never promoted"):
        probe.follow_token(tuned, s, "no such token")


def test_shift_of_a_model_without_padding_scores_one_at_a_time(tmp_path):
    """RWKV ignores the attention mask: answers of different lengths must not share a padded
    batch (they gave 5 nats off); batched equals one by one."""
    from probe.models.tiny import save_tiny

    torch.set_num_threads(1)
    base = probe.load(save_tiny(tmp_path / "a", "rwkv", "bpe", seed=0))
    tuned = probe.load(save_tiny(tmp_path / "b", "rwkv", "bpe", seed=1))
    prompts, answers = ["The capital of France is", "Hi"], [" Paris. The capital of Japan is Tokyo.", " there"]
    both = probe.shift(base, tuned, prompts, answers=answers, batch_size=2)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        alone = probe.shift(base, tuned, [p], answers=[a], batch_size=1).prompts[0]
        got = both.prompts[i]
        assert len(got.positions) == len(alone.positions) > 0
        for x, y in zip(got.positions, alone.positions):
            assert x.tuned_logprob == pytest.approx(y.tuned_logprob, abs=1e-4)
            assert x.base_logprob == pytest.approx(y.base_logprob, abs=1e-4)
