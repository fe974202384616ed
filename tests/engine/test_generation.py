import math

import pytest
import torch

import probe
from probe.engine.prompts import encode_prompt, render
from assertions import assert_same_greedy
from reference import check_step, next_token_logits, stats


def _prompt_ids(lm, prompt, **kw):
    return encode_prompt(lm, render(lm, prompt, **kw))


def test_greedy_matches_transformers_generate(raw_lm):
    prompt = "The capital of France is"
    trace = probe.generate(raw_lm, prompt, max_new_tokens=12)
    ids = torch.tensor([_prompt_ids(raw_lm, prompt)])
    out = raw_lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12,
                                do_sample=False, pad_token_id=raw_lm.pad_id)
    # the same tokens, or parted at a near-tie (2e-4 nats: 2x the tiny models' rounding bound)
    assert_same_greedy(raw_lm, ids[0].tolist(), trace.ids, out[0, ids.shape[1]:].tolist(), tie=2e-4)


def test_every_generated_step_matches_brute_force(raw_lm):
    prompt = "Hello world!"
    trace = probe.generate(raw_lm, prompt, max_new_tokens=10, top_k=4)
    ids = _prompt_ids(raw_lm, prompt)
    for step in trace.steps:
        logits = next_token_logits(raw_lm.model, ids)
        assert step.id == int(logits.argmax())  # greedy
        assert step.rank == 1
        check_step(step, stats(logits, step.id, 4))
        ids = ids + [step.id]


def test_generated_text_is_tiled_by_steps_and_equals_decoding(raw_lm):
    trace = probe.generate(raw_lm, "x", max_new_tokens=20)
    specials = set(raw_lm.tokenizer.all_special_ids)
    assert trace.text == raw_lm.tokenizer.decode(trace.ids, skip_special_tokens=True)
    cursor = 0
    for s in trace.steps:
        assert s.start == cursor
        if s.id not in specials:
            assert trace.text[s.start : s.end] == s.text
        cursor = s.end
    assert cursor == len(trace.text)


def test_forced_prefix_tokens_carry_the_models_probability(raw_lm):
    prompt, force = "Q: colors?\nA:", " ```json\n"
    trace = probe.generate(raw_lm, prompt, max_new_tokens=6, force=force)
    forced = [s for s in trace.steps if s.forced]
    scored = probe.score(raw_lm, prompt, force)
    assert [s.id for s in forced] == scored.ids and len(forced) >= 1
    for f, s in zip(forced, scored.steps):
        assert f.logprob == pytest.approx(s.logprob, abs=1e-4) and f.rank == s.rank
    assert trace.text.startswith(force) and trace.forced_text == force
    assert all(not s.forced for s in trace.steps[len(forced):])
    # The free tokens continue from prompt + forced ids.
    ids = _prompt_ids(raw_lm, prompt)
    ids = probe.engine.prompts.encode(raw_lm, render(raw_lm, prompt), force).ids
    first_free = trace.steps[len(forced)]
    check_step(first_free, stats(next_token_logits(raw_lm.model, ids), first_free.id))


def test_forced_prefix_on_a_chat_model_follows_the_generation_prompt(chat_lm):
    trace = probe.generate(chat_lm, "List three colors.", max_new_tokens=4, force="```json\n")
    assert trace.prompt.endswith("<|im_start|>assistant\n")
    assert trace.forced_text == "```json\n"


def test_watched_strings_have_exact_probabilities(raw_lm):
    prompt = "The capital of"
    watch = [" Paris", " Beijing is", "{"]
    trace = probe.generate(raw_lm, prompt, max_new_tokens=4, watch=watch)
    rendered = render(raw_lm, prompt)
    ids = _prompt_ids(raw_lm, prompt)
    for step in trace.steps:
        for w in watch:
            wids = probe.engine.prompts.encode(raw_lm, rendered, w).answer_ids
            logp, ctx = 0.0, list(ids)
            for t in wids:
                logp += float(torch.log_softmax(next_token_logits(raw_lm.model, ctx), -1)[t])
                ctx.append(t)
            assert step.watch[w] == pytest.approx(math.exp(logp), rel=1e-3, abs=1e-9)
        ids = ids + [step.id]
    assert any(len(probe.engine.prompts.encode(raw_lm, rendered, w).answer_ids) > 1 for w in watch)


def test_generate_many_equals_generate_one_by_one(raw_lm):
    prompts = ["The capital of France is", "a", "Hello world! How are you today?", "{"]
    many = probe.generate_many(raw_lm, prompts, max_new_tokens=8, watch=[" the"], batch_size=3, progress=False)
    for p, got in zip(prompts, many):
        one = probe.generate(raw_lm, p, max_new_tokens=8, watch=[" the"])
        # batched vs alone: the same tokens, or parted at a near-tie (2x the rounding bound)
        same = assert_same_greedy(raw_lm, _prompt_ids(raw_lm, p), got.ids, one.ids, tie=2e-4)
        assert same < len(one.ids) or got.text == one.text
        for x, y in zip(got.steps[:same], one.steps[:same]):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4)
            assert x.watch[" the"] == pytest.approx(y.watch[" the"], rel=1e-3, abs=1e-7)


def test_greedy_is_identical_across_runs(raw_lm):
    a = probe.generate(raw_lm, "The quick", max_new_tokens=10)
    b = probe.generate(raw_lm, "The quick", max_new_tokens=10)
    assert a == b


def test_sampling_is_seeded_and_reports_processed_probability(raw_lm):
    kw = dict(max_new_tokens=10, do_sample=True, temperature=0.7, top_p=0.9, seed=123)
    a = probe.generate(raw_lm, "The capital", **kw)
    b = probe.generate(raw_lm, "The capital", **kw)
    assert a.ids == b.ids
    for s in a.steps:
        assert s.sampled_prob is not None and 0 < s.sampled_prob <= 1
        # raw model probability is still the untempered one
        assert s.prob == pytest.approx(math.exp(s.logprob))
    ids = _prompt_ids(raw_lm, "The capital")
    logits = next_token_logits(raw_lm.model, ids)
    probs = torch.softmax(logits / 0.7, -1)
    sp, order = probs.sort(descending=True)
    keep = (sp.cumsum(0) - sp) < 0.9
    nucleus = {int(i): float(p) for i, p in zip(order[keep], sp[keep] / sp[keep].sum())}
    first = a.steps[0]
    assert first.id in nucleus
    assert first.sampled_prob == pytest.approx(nucleus[first.id], rel=1e-3)


def test_top_p_one_and_temperature_one_give_the_model_probability(raw_lm):
    t = probe.generate(raw_lm, "a", max_new_tokens=5, do_sample=True, seed=1)
    for s in t.steps:
        assert s.sampled_prob == pytest.approx(s.prob, rel=1e-4)


def test_stop_string_ends_generation(raw_lm):
    free = probe.generate(raw_lm, "The capital of France is", max_new_tokens=15)
    assert len(free.text) > 3
    stop = free.text[2:4]
    stopped = probe.generate(raw_lm, "The capital of France is", max_new_tokens=15, stop=stop)
    assert stopped.stop_reason == "stop" and stop in stopped.text
    assert len(stopped.steps) < len(free.steps) or free.stop_reason != "length"


def test_eos_ends_generation_and_is_kept_as_a_zero_width_step(gpt2_lm):
    eos = gpt2_lm.tokenizer.eos_token_id
    model = gpt2_lm.model
    with torch.no_grad():  # make EOS the certain next token after one step, on a copy
        import copy
        m2 = copy.deepcopy(model)
        m2.lm_head.weight.zero_()
        m2.lm_head.weight[eos] = 1.0
        m2.transformer.ln_f.bias.fill_(1.0)
        m2.transformer.ln_f.weight.zero_()
    lm = probe.load((m2, gpt2_lm.tokenizer))
    t = probe.generate(lm, "hello", max_new_tokens=5)
    assert t.stop_reason == "eos" and len(t.steps) == 1
    assert t.steps[0].id == eos and t.steps[0].start == t.steps[0].end == 0 and t.text == ""


def test_generation_argument_errors(gpt2_lm):
    with pytest.raises(ValueError, match="max_new_tokens"):
        probe.generate(gpt2_lm, "a", max_new_tokens=0)
    with pytest.raises(ValueError, match="watch"):
        probe.generate(gpt2_lm, "a", watch=[""])
    with pytest.raises(ValueError, match="temperature"):
        probe.generate(gpt2_lm, "a", do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="top_p"):
        probe.generate(gpt2_lm, "a", do_sample=True, top_p=1.5)
    with pytest.raises(TypeError, match="force"):
        probe.generate(gpt2_lm, "a", force=3)


def test_generate_many_with_one_forced_prefix_per_prompt(raw_lm):
    prompts = ["Q: colors?\nA:", "Q: colors?\nA:", "Hello"]
    forces = ["", " ```json\n", " {"]
    many = probe.generate_many(raw_lm, prompts, max_new_tokens=5, force=forces, progress=False)
    for p, f, got in zip(prompts, forces, many):
        one = probe.generate(raw_lm, p, max_new_tokens=5, force=f)
        assert got.ids == one.ids and got.forced_text == f
        for x, y in zip(got.steps, one.steps):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4) and x.forced == y.forced
    with pytest.raises(ValueError, match="2 forced prefixes for 3 prompts"):
        probe.generate_many(raw_lm, prompts, force=["", ""], progress=False)


def test_draw_gives_each_token_exactly_its_share_of_the_uniforms():
    from probe.engine.generation import draw

    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0], [0.25, 0.25, 0.5, 0.0, 0.0]])
    n = 20000
    grid = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # evenly spread uniforms
    for row in probs:
        got = draw(row.expand(n, -1), grid)
        share = torch.bincount(got, minlength=row.numel()).float() / n
        assert torch.allclose(share, row, atol=2 / n), (share, row)
    edges = torch.tensor([0.0, float(torch.nextafter(torch.tensor(1.0), torch.tensor(0.0))), 1.0])
    for row in torch.cat([probs, torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]])]):
        got = draw(row.expand(3, -1), edges).tolist()  # the extremes, even u = 1
        with_mass = [i for i in range(5) if row[i] > 0]
        assert got[0] == with_mass[0] and got[2] == with_mass[-1] and all(row[i] > 0 for i in got)


def _early_stops(early, late) -> list[str]:
    """Stop strings that end each of ``early``'s greedy runs within its first tokens, none of
    which ``late``'s run ever writes: rows finish at different steps whatever the tiny model."""
    for n in (2, 3, 4, 6):
        stops = {"".join(s.text for s in t.steps[:n]) for t in early}
        stops = sorted(x for x in stops if x.strip() and x not in late.text)
        if stops:
            return stops
    raise AssertionError(f"no early stop string for {[t.text for t in early]} vs {late.text!r}")


@pytest.mark.parametrize("fan", [False, True])
def test_finished_rows_leave_the_batch_and_the_rest_is_unchanged(raw_lm, monkeypatch, fan):
    import probe.engine.generation as generation
    from probe.engine.generation import RowSpec, generate_rows

    dropped = []
    real = generation._drop_done

    def spy(rows, *args):
        out = real(rows, *args)
        dropped.append((len(rows), len(out[0])))
        return out

    monkeypatch.setattr(generation, "_drop_done", spy)
    prompts = ["The capital", "Hello world!", "a b c d e f", "Once upon a time there", "x", "Paris is"]
    first = [probe.generate(raw_lm, p, max_new_tokens=12) for p in prompts]
    kw = dict(max_new_tokens=12, stop=_early_stops(first[:-1], first[-1]), top_k=3)
    fan_out = [[None, 5, 6]] * len(prompts) if fan else None
    batched = generate_rows(raw_lm, [RowSpec(p) for p in prompts], batch_size=len(prompts), fan_out=fan_out, **kw)
    assert dropped and all(after < before for before, after in dropped)  # rows really left
    alone = []
    for p in prompts:
        for seed in ([None, 5, 6] if fan else [None]):
            alone.append(probe.generate(raw_lm, p, do_sample=seed is not None, seed=seed, **kw))
    assert [t.stop_reason for t in batched] == [t.stop_reason for t in alone]
    assert "stop" in {t.stop_reason for t in batched} and len({len(t.steps) for t in batched}) > 1
    for b, a in zip(batched, alone):
        assert b.ids == a.ids and b.text == a.text
        for sb, sa in zip(b.steps, a.steps):
            assert sb.logprob == pytest.approx(sa.logprob, abs=1e-4) and sb.rank == sa.rank


def test_rows_leave_a_mixed_adapter_batch_with_their_adapter_names_and_watches(tiny_dirs, tmp_path,
                                                                              monkeypatch):
    import probe.engine.generation as generation
    from probe.engine.generation import RowSpec, generate_rows
    from probe.engine.settings import BASE_ADAPTER
    from builders import make_adapter as _make_adapter

    folder = tiny_dirs[("llama", "unigram", False)]
    base, tuned = probe.load_pair(folder, adapter=_make_adapter(folder, tmp_path / "a"))
    sizes = []
    real = generation._drop_done
    monkeypatch.setattr(generation, "_drop_done",
                        lambda rows, *a: sizes.append(len(rows)) or real(rows, *a))
    prompts = ["The capital", "Hello world!", "a b c d e f", "Once upon a time there"]
    lms = [tuned, base] * 2
    names = [tuned.active_adapter, BASE_ADAPTER] * 2
    first = [probe.generate(lm, p, max_new_tokens=12) for lm, p in zip(lms, prompts)]
    kw = dict(max_new_tokens=12, stop=_early_stops(first[:-1], first[-1]), top_k=3, watch=[" the", "ab c"])
    batched = generate_rows(tuned, [RowSpec(p, adapter=a) for p, a in zip(prompts, names)],
                            batch_size=len(prompts), **kw)
    assert sizes and batched[-1].stop_reason == "length"  # rows left; the last one ran on
    for lm, p, b in zip(lms, prompts, batched):
        a = probe.generate(lm, p, **kw)
        assert b.ids == a.ids and b.stop_reason == a.stop_reason
        for sb, sa in zip(b.steps, a.steps):
            assert sb.logprob == pytest.approx(sa.logprob, abs=1e-4)
            for w in kw["watch"]:
                assert sb.watch[w] == pytest.approx(sa.watch[w], rel=1e-3, abs=1e-7)
