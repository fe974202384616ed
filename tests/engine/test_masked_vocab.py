"""Models whose logits hold -inf (masked vocabulary rows) or NaN (broken weights, overflow).

A masked entry (logit -inf, as models with padded or banned vocabulary rows give) is a
probability 0, not a failure: every feature works, the masked tokens show probability 0 and a
rank after every finite token, and saved results stay strict JSON. NaN logits are an error that
says so, with the model and the position.
"""

import json
import math

import pytest
import torch

import probe
from probe.engine.forward import NonFiniteLogitsError, _close
from probe.engine.support import supports
from probe.engine.trace import TokenTrace
from probe.models.tiny import save_tiny
from reference import next_token_logits

PROMPT = "The capital of France is Paris. The capital of"
TARGET = " Paris"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hooked(folder, mode: str, masked=()):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()

    def hook(module, args, out):
        out = out.clone()
        if mode == "neginf":
            out[..., list(masked)] = -math.inf
        else:
            out[..., :] = math.nan
        return out

    model.get_output_embeddings().register_forward_hook(hook)
    return probe.load((model, AutoTokenizer.from_pretrained(folder)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("masked"), "llama", "bpe")


@pytest.fixture(scope="module")
def masked(folder):
    """A llama whose logits are -inf on a block of ids and on the target's first token."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    target_id = tok(TARGET, add_special_tokens=False)["input_ids"][0]
    ids = set(range(100, 160)) | {target_id}
    return _hooked(folder, "neginf", ids), ids, target_id


def _reference(lm, ids, token):
    """Brute force (float64) with -inf entries: probability 0, rank after every finite one."""
    logits = next_token_logits(lm.model, ids)
    logp = torch.log_softmax(logits, -1)
    finite = torch.isfinite(logits)
    p = logp.exp()
    return {"logprob": float(logp[token]), "rank": 1 + int((logits > logits[token]).sum()),
            "entropy": float(-(p[finite] * logp[finite]).sum()), "n_finite": int(finite.sum())}


def test_close_compares_finite_entries_and_requires_the_same_masked_ones():
    a = torch.tensor([[1.0, -math.inf, 3.0]])
    assert _close(a, a.clone())
    assert not _close(a, torch.tensor([[1.0, 2.0, 3.0]]))  # -inf on one side only
    assert not _close(a, torch.tensor([[1.0, -math.inf, 3.5]]))
    assert _close(torch.full((1, 3), -math.inf), torch.full((1, 3), -math.inf))
    with pytest.raises(NonFiniteLogitsError, match="NaN"):
        _close(torch.tensor([[math.nan, 1.0]]), torch.tensor([[0.0, 1.0]]))


def test_support_checks_pass_on_masked_logits(masked):
    lm, _, _ = masked
    for need in ("padding", "cache", "padded-cache", "feed", "rollback"):
        assert supports(lm, need), (need, lm.model.__dict__["_probe_supports"])


def test_masked_target_scores_probability_zero_ranked_last(masked):
    lm, ids, target_id = masked
    trace = probe.score(lm, PROMPT, TARGET)
    first = trace.steps[0]
    assert first.id == target_id
    prefix = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, PROMPT), TARGET).ids[:-len(trace.steps)]
    ref = _reference(lm, prefix, target_id)
    assert first.logprob == -math.inf and first.prob == 0.0
    assert first.rank == ref["rank"] == ref["n_finite"] + 1  # after every finite token
    assert first.entropy == pytest.approx(ref["entropy"], abs=1e-4)
    assert all(a.id not in ids for a in first.top)  # the top-k are finite tokens
    # saved results are strict JSON and come back equal
    d = trace.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = TokenTrace.from_dict(json.loads(text))
    assert back == trace and back.steps[0].logprob == -math.inf
    assert "Paris" in str(trace) and "Paris" in trace._repr_html_()  # the views render it


def test_generate_force_watch_and_batches_on_masked_logits(masked):
    lm, ids, target_id = masked
    g = probe.generate(lm, PROMPT, max_new_tokens=4, force=" Rome.", watch=[TARGET, " Rome"])
    prompt_ids = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, PROMPT), " Rome.").ids
    context = list(prompt_ids)
    for step in g.steps:
        if step.forced:
            continue
        ref = _reference(lm, context, step.id)
        assert step.logprob == pytest.approx(ref["logprob"], abs=1e-4) and step.rank == ref["rank"]
        assert step.id not in ids
        assert step.watch[TARGET] == 0.0  # its first token is masked
        assert step.watch[" Rome"] > 0
        context.append(step.id)
    json.dumps(g.to_dict(), allow_nan=False)
    many = probe.score_many(lm, [(PROMPT, TARGET), ("Hi", " there")], progress=False)
    assert many[0].steps[0].logprob == -math.inf and many[0].steps[0].rank == probe.score(lm, PROMPT, TARGET).steps[0].rank


def test_top_k_larger_than_the_finite_tokens_shows_probability_zero(folder):
    from transformers import AutoTokenizer

    n = len(AutoTokenizer.from_pretrained(folder))
    lm = _hooked(folder, "neginf", range(3, n))  # only 3 finite tokens
    step = probe.score(lm, PROMPT, TARGET, top_k=5).steps[0]
    assert [a.prob > 0 for a in step.top] == [True] * 3 + [False] * 2
    assert all(a.logprob == -math.inf for a in step.top[3:])
    assert TokenTrace.from_dict(json.loads(json.dumps(probe.score(lm, PROMPT, TARGET).to_dict(),
                                                      allow_nan=False))).steps[0].top[4].prob == 0.0


def test_nan_logits_are_named_not_an_unsupported_family(folder):
    lm = _hooked(folder, "nan")
    for run in (lambda: probe.score(lm, PROMPT, TARGET),
                lambda: probe.generate(lm, PROMPT, max_new_tokens=2),
                lambda: probe.score_many(lm, [(PROMPT, TARGET), ("Hi", " there")], progress=False)):
        with pytest.raises(NonFiniteLogitsError) as err:
            run()
        message = str(err.value)
        assert "NaN" in message and "position" in message and lm.name in message
        assert "cannot be used" not in message


def test_shift_with_masked_entries_keeps_finite_gains_and_strict_json(folder, masked, tmp_path):
    from probe.shifts.map import Shift

    base, ids, target_id = masked
    other = save_tiny(tmp_path / "other", "llama", "bpe", seed=3)
    tuned = _hooked(other, "neginf", ids)
    s = probe.shift(base, tuned, [PROMPT], answers=[TARGET + " is"], min_prob=0.0, promote_k=3, min_gain=0.0)
    first = s.prompts[0].positions[0]
    assert first.id == target_id and first.tuned_logprob == first.base_logprob == -math.inf
    for pos in s.prompts[0].positions:  # both mask the same ids: NaN gains never take a slot
        assert len(pos.promoted) == 3 and all(math.isfinite(g.gain) for g in pos.promoted)
        assert not {g.id for g in pos.promoted + pos.demoted} & ids
    back = Shift.from_dict(json.loads(json.dumps(s.to_dict(), allow_nan=False)))
    assert back.prompts[0].positions == s.prompts[0].positions


def test_diagnosis_results_with_a_masked_token_are_strict_json(masked, tmp_path):
    from probe.diagnosis.compare import Comparison, compare
    from probe.diagnosis.divergence import Divergence, divergence_from_trace

    lm, _, _ = masked
    tuned = _hooked(save_tiny(tmp_path / "other", "llama", "bpe", seed=3), "neginf", masked[1])
    c = compare(lm, tuned, PROMPT, TARGET + " is")
    assert c.segments[0].base_logprob == -math.inf
    assert Comparison.from_dict(json.loads(json.dumps(c.to_dict(), allow_nan=False))) == c
    d = divergence_from_trace(probe.score(lm, PROMPT, TARGET + " is"))
    assert d.diverged and d.step.prob == 0.0
    assert Divergence.from_dict(json.loads(json.dumps(d.to_dict(), allow_nan=False))) == d


def _strict_case(result):
    """The case file of ``result`` parses as strict JSON (no NaN / Infinity) and reads back."""
    def refuse(constant):
        raise ValueError(f"{constant} in a case file")

    text = probe.Case.from_result(result).to_json()
    json.loads(text, parse_constant=refuse)
    return probe.Case.from_json(text)


def test_data_loss_of_a_masked_answer_token_is_an_infinite_loss_saved_as_strict_json(masked):
    from probe.train.loss import DataLoss

    lm, _, target_id = masked
    d = probe.data_loss(lm, [{"prompt": PROMPT, "completion": TARGET + " is"}], traces=True)
    e = d.examples[0]
    assert e.tuned_losses[0] == math.inf and e.tuned_loss == math.inf  # -log 0
    assert all(math.isfinite(x) for x in e.tuned_losses[1:])
    assert e.tuned.steps[0].id == target_id and e.tuned.steps[0].logprob == -math.inf
    back = DataLoss.from_dict(json.loads(json.dumps(d.to_dict(), allow_nan=False)))
    assert back.examples[0].tuned_losses == e.tuned_losses and back.examples[0].tuned == e.tuned
    assert back.channels[0].tuned_loss == math.inf
    _strict_case(d)
    for other in (probe.sweep(lm, "The capital of {c} is", watch=TARGET, c=["France", "Spain"]),
                  probe.occlusion(lm, PROMPT, TARGET), probe.layers(lm, PROMPT, TARGET)):
        _strict_case(other)


def test_a_channel_whose_base_loss_is_infinite_and_an_infinite_threshold_survive_a_case_file(folder, masked):
    from probe.train.epochs import Epochs, EpochRow
    from probe.train.loss import DataLoss

    lm, _, _ = masked
    plain = probe.load(folder)
    recs = [{"prompt": PROMPT, "completion": TARGET + " is", "source": "masked"},
            {"prompt": "Hello", "completion": " world", "source": "a"},
            {"prompt": "One two", "completion": " three", "source": "b"}]
    d = probe.data_loss((lm, plain), recs, channel="source", thresholds={"outlier": math.inf}, traces=False)
    by = {c.name: c for c in d.channels}
    assert by["masked"].base_loss == math.inf and by["masked"].change == -math.inf
    # the others' median leaves the infinite change out: every rest is a finite number
    assert all(c.rest_change is not None and math.isfinite(c.rest_change) for c in d.channels)
    assert d.thresholds["outlier"] == math.inf and not d.outliers
    back = DataLoss.from_dict(json.loads(json.dumps(d.to_dict(), allow_nan=False)))
    assert back.channels == d.channels and back.thresholds == d.thresholds
    e = Epochs(("epoch-1",), channels=(EpochRow("masked", math.inf, (-math.inf,), ("outlier",), "epoch-1"),))
    assert Epochs.from_dict(json.loads(json.dumps(e.to_dict(), allow_nan=False))) == e
    _strict_case(d)


def test_nan_at_an_earlier_scored_position_is_named():
    from probe.engine.stats import row_stats

    logits = torch.tensor([[0.0, 1.0, -math.inf], [math.nan, 0.0, 1.0], [0.0, 0.0, 0.0]])
    with pytest.raises(NonFiniteLogitsError, match="position 1 "):
        row_stats(logits, torch.tensor([0, 1, 2]), 2)
    ok = row_stats(logits[[0, 2]], torch.tensor([2, 0]), 3)  # -inf alone: probability 0, ranked last
    assert ok.logprob[0] == -math.inf and ok.rank[0] == 3 and ok.top_logprobs[0][2] == -math.inf
