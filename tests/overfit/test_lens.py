import copy
import dataclasses
import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from reference import full_ids
from reference import stats as ref_stats
from strategies import hostile
from torch import nn

import probe
from probe.engine.anatomy import StructureError, anatomy
from probe.overfit.lens import LayerLens, LensCell, layers
from probe.engine.trace import Alternative
from probe.models.tiny import tiny_model

PROMPT, TARGET = "The capital of France is", " Paris and Tokyo"


def _final_norm(model):
    """Each tiny family's final norm, named by hand (independent of probe.engine.anatomy)."""
    body = model.base_model
    return body.ln_f if hasattr(body, "ln_f") else body.norm


@torch.no_grad()
def lens_reference(lm, lens, chat: bool):
    """Brute force in float64: HF's own hidden states, final norm + head applied by hand.

    HF returns hidden_states[-1] already normed (it is last_hidden_state), so the norm is
    applied to the earlier entries only; the last one must then match the real logits.
    """
    model = copy.deepcopy(lm.model).double()
    ids = full_ids(lm, lens.prompt, lens.target, add_special=not chat)
    n = len(lens.ids)
    assert ids[-n:] == list(lens.ids)
    out = model(input_ids=torch.tensor([ids]), output_hidden_states=True, use_cache=False)
    hs = out.hidden_states  # (layers) of (1, seq, hidden)
    assert len(hs) == lens.n_layers
    rows = []
    for layer, h in enumerate(hs):
        h = h[0, len(ids) - n - 1 : len(ids) - 1]  # (n, hidden): positions before each answer token
        if layer < len(hs) - 1:
            h = _final_norm(model)(h)
        rows.append(model.get_output_embeddings()(h))  # (n, vocab)
    assert torch.allclose(rows[-1], out.logits[0, -n - 1 : -1], atol=1e-9)
    return rows


def _check_against(lens, rows):
    for layer, logits in enumerate(rows):
        for j, tok in enumerate(lens.ids):
            ref = ref_stats(logits[j], tok, top_k=len(lens.cells[layer][j].top))
            cell = lens.cells[layer][j]
            assert abs(cell.logprob - ref["logprob"]) < 1e-4, (layer, j)
            lo, hi = ref["rank_range"]
            assert lo <= cell.rank <= hi, (layer, j, cell.rank, ref["rank_range"])
            for a, r in zip(cell.top, ref["top_logprobs"]):
                assert abs(a.logprob - r) < 1e-4


def test_every_layer_matches_brute_force_raw(raw_lm):
    lens = layers(raw_lm, PROMPT, TARGET)
    assert lens.n_layers == raw_lm.model.config.num_hidden_layers + 1
    _check_against(lens, lens_reference(raw_lm, lens, chat=False))


def test_every_layer_matches_brute_force_chat(chat_lm):
    lens = layers(chat_lm, "What is the capital of France?", "Paris.", system="Be brief.")
    assert lens.prompt.startswith("<|im_start|>system")
    _check_against(lens, lens_reference(chat_lm, lens, chat=True))


@pytest.mark.parametrize("raw", [True, None])
def test_last_layer_is_the_models_own_output(raw_lm, chat_lm, raw):
    for lm in (raw_lm, chat_lm):
        t = probe.score(lm, PROMPT, TARGET, raw=raw)
        lens = layers(lm, PROMPT, TARGET, raw=raw)
        assert lens.ids == tuple(t.ids) and lens.tokens == tuple(s.text for s in t.steps)
        assert lens.prompt == t.prompt
        for cell, step in zip(lens.cells[-1], t.steps):
            assert cell.rank == step.rank
            assert cell.logprob == pytest.approx(step.logprob, abs=1e-5)
            assert [a.id for a in cell.top] == [a.id for a in step.top]


def test_intermediate_layers_differ_from_the_output(llama_lm):
    lens = layers(llama_lm, PROMPT, TARGET)
    first, last = lens.column(0)[0], lens.column(0)[-1]
    assert abs(first.logprob - last.logprob) > 1e-4


# ---------------------------------------------------------------- LoRA


def _adapter(base_dir, out_dir, targets):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(0)
    cfg = LoraConfig(r=4, lora_alpha=16, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out_dir)
    return out_dir


@pytest.mark.parametrize("targets", [["q_proj", "v_proj", "o_proj"], ["o_proj", "lm_head"]])
def test_lora_base_lens_is_the_plain_model_and_tuned_differs(tiny_dirs, tmp_path, targets):
    base_dir = tiny_dirs[("llama", "unigram", False)]
    base, tuned = probe.load_pair(base_dir, adapter=_adapter(base_dir, tmp_path, targets))
    plain = probe.load(base_dir)
    b, t, p = (layers(x, PROMPT, TARGET) for x in (base, tuned, plain))
    for row_b, row_p in zip(b.cells, p.cells):
        for cb, cp in zip(row_b, row_p):
            assert cb.rank == cp.rank and cb.logprob == pytest.approx(cp.logprob, abs=1e-5)
    diff = max(abs(ct.logprob - cb.logprob) for rt, rb in zip(t.cells, b.cells) for ct, cb in zip(rt, rb))
    assert diff > 1e-3
    scored = probe.score(tuned, PROMPT, TARGET)
    for cell, step in zip(t.cells[-1], scored.steps):
        assert cell.rank == step.rank and cell.logprob == pytest.approx(step.logprob, abs=1e-5)
    # the base handle still reads the plain model after the tuned one ran
    assert layers(base, PROMPT, TARGET) == b


# ---------------------------------------------------------------- structure


def test_softcapped_model_lens_matches_score(llama_lm, monkeypatch):
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("gemma2", vocab_size=len(llama_lm.tokenizer), hidden_size=32,
                               intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                               final_logit_softcapping=5.0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(40.0)  # logits well past the cap
    lm = probe.load((model, llama_lm.tokenizer), chat=False)
    parts = anatomy(lm.model)
    assert parts.softcap == 5.0
    lens = layers(lm, PROMPT, TARGET)
    t = probe.score(lm, PROMPT, TARGET)
    for cell, step in zip(lens.cells[-1], t.steps):
        assert cell.rank == step.rank and cell.logprob == pytest.approx(step.logprob, abs=1e-5)
    # Without the cap the lens would be wrong, and says so instead of answering.
    monkeypatch.setattr("probe.overfit.lens.anatomy", lambda model: dataclasses.replace(parts, softcap=None))
    with pytest.raises(StructureError, match="could not reproduce"):
        layers(lm, PROMPT, TARGET)


def test_lens_refuses_when_it_cannot_reproduce_the_logits(tiny_dirs):
    lm = probe.load(tiny_dirs[("llama", "unigram", False)])
    lm.model.config.final_logit_softcapping = 0.5  # a cap the model itself never applies
    with pytest.raises(StructureError, match="could not reproduce the model's logits"):
        layers(lm, PROMPT, TARGET)


def test_missing_lm_head_is_named():
    class Encoder(nn.Module):
        config = tiny_model("llama", 50).config

        def get_output_embeddings(self):
            return None

    with pytest.raises(StructureError, match="LM head"):
        anatomy(Encoder())


def test_missing_block_list_is_named():
    model = tiny_model("llama", 50)
    model.model.layers = nn.Sequential(*model.model.layers)
    with pytest.raises(StructureError, match="list of transformer blocks"):
        anatomy(model)


def test_anatomy_of_both_families(gpt2_lm, llama_lm):
    g, l = anatomy(gpt2_lm.model), anatomy(llama_lm.model)
    assert (g.blocks_name, g.norm_name) == ("transformer.h", "transformer.ln_f")
    assert (l.blocks_name, l.norm_name) == ("model.layers", "model.norm")
    assert g.head is gpt2_lm.model.lm_head and g.softcap is None and g.scale == 1.0


def test_empty_prompt_target_and_bad_top_k_are_refused(raw_lm):
    with pytest.raises(ValueError, match="target is empty"):
        layers(raw_lm, PROMPT, "")
    with pytest.raises(ValueError, match="prompt is empty"):
        layers(raw_lm, "", TARGET)
    with pytest.raises(ValueError, match="top_k"):
        layers(raw_lm, PROMPT, TARGET, top_k=-1)


# ---------------------------------------------------------------- the result


def _cell(rank):
    return LensCell(rank=rank, prob=1 / rank, logprob=-math.log(rank),
                    top=(Alternative(7, "<b>x</b>", 0.5, math.log(0.5)),))


def _made(ranks):
    """A LayerLens by hand: ranks[layer] for one target token."""
    return LayerLens(prompt="p", target=" t", tokens=(" t",), ids=(3,),
                     cells=tuple((_cell(r),) for r in ranks), model="m")


def test_first_top_names_the_first_rank_one_layer_or_never():
    lens = _made([9, 1, 4, 1, 1])
    assert lens.first_top() == 1 and lens.first_top(stays=True) == 3
    assert lens.first_top_name() == "layer 1"
    never = _made([5, 3, 2])
    assert never.first_top() is None and never.first_top(stays=True) is None
    assert never.first_top_name() == "never" and "never the top token" in never.summary
    assert _made([1, 2]).first_top_name() == "embeddings"


def test_text_html_and_figures(gpt2_lm):
    lens = layers(gpt2_lm, PROMPT, " <img src=x> & Paris", top_k=3)
    text = str(lens)
    assert "embeddings" in text and "layer 2 (output)" in text and "first rank 1" in text
    html = lens._repr_html_()
    assert "<img src=x>" not in html and "&lt;img" in html
    assert html.count("<tr>") == lens.n_layers + 1
    lines = lens.figure()
    assert len(lines.data) == 2 * len(lens.tokens)
    assert lines.layout.yaxis.type == "log"
    heat = lens.figure("heatmap")
    assert len(heat.data[0].z) == lens.n_layers
    with pytest.raises(ValueError, match="kind"):
        lens.figure("pie")


def test_no_top_tokens_with_top_k_zero(gpt2_lm):
    lens = layers(gpt2_lm, PROMPT, TARGET, top_k=0)
    assert all(c.top == () for row in lens.cells for c in row)
    assert " -" in str(lens)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=hostile)
def test_round_trip_through_json(gpt2_lm, target):
    lens = layers(gpt2_lm, "Say:", target)
    data = json.loads(json.dumps(lens.to_dict(), allow_nan=False))
    assert LayerLens.from_dict(data) == lens


def test_underflowed_logprob_is_stored_as_none():
    lens = dataclasses.replace(_made([1]), cells=((LensCell(rank=9, prob=0.0, logprob=-math.inf, top=()),),))
    d = lens.to_dict()
    assert d["cells"][0][0]["logprob"] is None
    json.dumps(d, allow_nan=False)
    assert LayerLens.from_dict(d) == lens


def test_bfloat16_lens_output_matches_score_and_stats_are_float32(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)], dtype="bfloat16")
    lens = layers(lm, PROMPT, TARGET)
    t = probe.score(lm, PROMPT, TARGET)
    assert [c.rank for c in lens.cells[-1]] == [s.rank for s in t.steps]
    assert all(isinstance(c.logprob, float) for row in lens.cells for c in row)
    assert sum(c.logprob for c in lens.cells[-1]) == pytest.approx(t.total_logprob, abs=1e-4)
