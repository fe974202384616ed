"""The architecture matrix: every common decoder family, built tiny from its config.

Each family's model is built, saved and loaded back through ``probe.load`` once per session,
then checked against brute force (one full forward per prefix, float64, no cache) and
against transformers' own ``generate``. Sliding-window families get a window of
``probe.tiny.WINDOW`` tokens, and the prompts below are longer than it, so every cached path
(prefill, decoding, watched strings, forced prefixes) runs past the window.
"""

import math

import pytest
import torch
from torch import nn

import probe
from probe.diagnosis.result import VERDICTS
from probe.engine.prompts import encode, encode_prompt, render
from probe.models.tiny import ARCHS, WINDOW, save_tiny
from reference import check_step, next_token_logits, stats
from assertions import PAIRS, _assert_same, assert_matches_brute_force, assert_same_greedy

# (model_type, tokenizer, chat template). Tokenizers alternate so both kinds meet most
# attention/cache variants; a few families run on chat prompts.
FAMILIES = [
    ("llama", "unigram", False),
    ("mistral", "unigram", False),
    ("ministral3", "unigram", False),
    ("mixtral", "unigram", False),
    ("qwen2", "bpe", True),
    ("qwen3", "bpe", False),
    ("qwen2_moe", "bpe", False),
    ("qwen3_moe", "bpe", True),
    ("gemma", "unigram", False),
    ("gemma2", "unigram", False),
    ("gemma3_text", "unigram", True),
    ("gemma4_text", "unigram", False),
    ("phi3", "bpe", True),
    ("phi", "bpe", False),
    ("gpt2", "bpe", False),
    ("gpt_bigcode", "bpe", False),
    ("gpt_neo", "bpe", False),
    ("gpt_neox", "bpe", False),
    ("gptj", "bpe", False),
    ("falcon", "bpe", False),
    ("bloom", "bpe", False),
    ("opt", "bpe", False),
    ("olmo", "bpe", False),
    ("olmo2", "bpe", False),
    ("olmo3", "bpe", False),
    ("granite", "bpe", True),
    ("granite_swa", "bpe", False),
    ("starcoder2", "bpe", False),
    ("cohere", "bpe", False),
    ("cohere2", "bpe", False),
    ("stablelm", "bpe", False),
    ("smollm3", "bpe", True),
    # recurrent / hybrid: a state instead of (or besides) a KV cache
    ("qwen3_5_text", "bpe", True),
    ("lfm2", "bpe", False),
    ("mamba", "bpe", False),
    ("rwkv", "bpe", False),
    ("recurrent_gemma", "unigram", False),
    # attention + state-space hybrids (a larger random init: see probe.models.tiny._STATE_INIT)
    ("falcon_h1", "bpe", False),
    ("minimax", "unigram", False),
    ("jamba", "bpe", False),
    ("bamba", "unigram", False),
    ("granitemoehybrid", "bpe", False),
    ("qwen3_next", "bpe", True),
    ("zamba2", "unigram", False),
    # mixture-of-experts whose router subclasses nn.Linear and returns a tuple
    ("llama4_text", "bpe", False),
    ("phimoe", "unigram", False),
]
NAMES = [f[0] for f in FAMILIES]

# What a family may refuse: there it must be exact or raise an error that names the family and
# the feature, never a wrong number. Everything not listed here must simply work.
MAY_REFUSE = {
    "rwkv": {"score_many", "generate", "force", "watch", "diagnose"},  # no attention mask, no cache
    "recurrent_gemma": {"score_many", "generate", "force", "watch", "diagnose"},
    "minimax": {"diagnose"},  # a cached step of a left-padded batch is wrong (its cache's masks)
    "zamba2": {"generate", "force", "watch", "diagnose"},  # cached decode skips a clamp (KNOWN_INEXACT)
}
FEATURE_WORDS = {
    "score_many": ("batch", "padding", "score_many"),
    "generate": ("generat", "cache"),
    "force": ("force", "generat", "cache"),
    "watch": ("watch",),
    "lens": ("lens", "layer"),
    "diagnose": ("diagnos", "adapter", "batch"),
}
REFUSED = object()

# How far apart two of probe's paths may come out for one family (batched vs alone, a cached step
# vs a full forward, probe's float32 statistics vs the float64 brute-force reference): a bound on
# |difference| of a log-probability, entropy or top-k log-probability, in nats. Measured, not
# guessed: tests/engine/measure_rounding.py runs every comparison of this module (generation and
# watched strings at every step, not every few) on fresh tiny models of several weight seeds (the
# unigram tokenizer also trains differently on each build) and prints each family's worst; each
# bound is about 4x or more that worst. Figures below: worst over seeds 0-3 (qwen3_next 0-15; the
# attention-only families 0-3 for eleven of them, seed 0 for the rest), float32, CPU, 2026-12-07.
# A wrong token, position, mask or cache is off by tenths of a nat and up, far above any bound.
ROUNDING = 1e-4  # attention-only families (and rwkv, recurrent_gemma, qwen3_5_text): worst 1.2e-5
ROUNDING_OF = {
    # State-space layers: the scan runs in another order on a left-padded row, a cached step and
    # a full forward (transformers' torch kernels, which compute in float32 whatever the model's
    # dtype: a float64 model shows the same differences), so rounding is larger.
    "lfm2": 2e-4,  # worst 2.9e-5
    "falcon_h1": 2e-4,  # 4.1e-5
    "minimax": 2e-4,  # 2.7e-5
    "bamba": 2e-4,  # 4.2e-5
    "granitemoehybrid": 2e-4,  # 3.8e-5
    "zamba2": 2e-4,  # 2.8e-5
    "jamba": 6e-4,  # 1.3e-4 (a cached step against the full forward)
    # The gated delta rule cuts its chunks elsewhere on a padded row or a cached step, at logits up
    # to ~35: 6.6e-4 (cached step), 3.9e-4 batched vs alone. The 1e-4 flat bound this test had
    # failed on a fresh clone's CI run (test_score_many_equals_one_by_one[qwen3_next]) and fails
    # here on seed 0 (3.4e-4): it passed by luck where it passed.
    "qwen3_next": 3e-3,
}
# mamba's watched strings are fed on its cache one token at a time through improbable tokens
# (~ -20 nats each: the string's log-probability is ~ -65), where the difference reaches 9.0e-4
# per token; its other comparisons stay within 1.2e-5 (ROUNDING).
WATCH_ROUNDING_OF = {"mamba": 4e-3}


def rounding(fam) -> float:
    """This family's measured rounding bound (see ROUNDING)."""
    return ROUNDING_OF.get(fam[0], ROUNDING)


SHORT = "The capital of"  # a few tokens: inside the window
LONG = ("Hello world! How are you today? The capital of France is Paris. The capital of Japan is "
        "Tokyo. The capital of China is Beijing. The capital of")  # several windows long
TARGET = " Rome. The capital of Germany is Berlin, and the capital of Japan is Tokyo."
FORCE = " Paris. The capital of"
WATCH = [" Paris", " Beijing is", " the capital of"]


def _text_config(lm):
    cfg = lm.model.config
    return getattr(cfg, "get_text_config", lambda: cfg)()


def sliding_window(lm):
    cfg = _text_config(lm)
    for key in ("sliding_window", "window_size", "attention_window_size"):
        if getattr(cfg, key, None):
            return getattr(cfg, key)
    return None


def attempt(fam, feature: str, run):
    """``run()``, probe's result; or REFUSED where the family may refuse ``feature`` and did,
    with an error that names the family and the feature."""
    name, _, lm = fam
    if feature not in MAY_REFUSE.get(name, ()):
        return run()
    try:
        return run()
    except AssertionError:
        raise
    except Exception as err:  # noqa: BLE001 - judged by its message below
        message = str(err).lower().replace("_", "")
        family = {name.removesuffix("_text").replace("_", ""), type(lm.model).__name__.lower()}
        assert any(f in message for f in family) and any(w in message for w in FEATURE_WORDS[feature]), (
            f"{name} cannot do {feature}, and its error does not say so: {type(err).__name__}: {err}")
        return REFUSED


_built: dict = {}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: thread hand-offs cost more than they save (and CI cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=FAMILIES, ids=NAMES)
def fam(request, tmp_path_factory):
    """(family name, its saved folder, the loaded LM): built once per session."""
    arch, tok, chat = request.param
    if arch not in _built:
        folder = save_tiny(tmp_path_factory.mktemp(arch), arch, tok, chat=chat)
        _built[arch] = (arch, folder, probe.load(folder))
    return _built[arch]


def _prompt_ids(lm, prompt, **kw):
    return encode_prompt(lm, render(lm, prompt, **kw))


def _hf_greedy(lm, ids, n):
    """transformers' own greedy continuation of ``ids`` (its own cache and masks)."""
    x = torch.tensor([ids], device=lm.device)
    with lm.active():
        out = lm.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                                pad_token_id=lm.pad_id)
    return out[0, len(ids):].tolist()


def test_every_family_is_built_from_its_config(fam):
    name, _, lm = fam
    cfg = lm.model.config
    assert cfg.model_type == name and name in ARCHS
    assert lm.model.config.vocab_size == len(lm.tokenizer)
    window = sliding_window(lm)
    if window is not None:
        assert window == WINDOW and len(_prompt_ids(lm, LONG)) > 3 * WINDOW
    if name in ("gemma2", "gemma3_text", "gemma4_text"):
        assert cfg.final_logit_softcapping


# ---------------------------------------------------------------- scoring


@pytest.mark.parametrize("prompt", [SHORT, LONG], ids=["short", "long"])
def test_score_matches_brute_force(fam, prompt):
    _, _, lm = fam
    trace = assert_matches_brute_force(lm, prompt, TARGET, tol=rounding(fam))
    window = sliding_window(lm)
    assert window is None or len(trace.steps) > window  # the answer alone is past the window


def test_score_many_equals_one_by_one(fam):
    _, _, lm = fam
    pairs = PAIRS + [(LONG, TARGET), (SHORT, " Paris")]  # lengths differ: left padding
    batched = attempt(fam, "score_many", lambda: probe.score_many(lm, pairs, batch_size=4, progress=False))
    if batched is REFUSED:
        return
    for (prompt, target), got in zip(pairs, batched):
        _assert_same(got, probe.score(lm, prompt, target), tol=rounding(fam))


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("prompt", [SHORT, LONG], ids=["short", "long"])
def test_greedy_equals_transformers_generate(fam, prompt):
    _, _, lm = fam
    n = 3 * WINDOW
    trace = attempt(fam, "generate", lambda: probe.generate(lm, prompt, max_new_tokens=n))
    if trace is REFUSED:
        return
    ids = _prompt_ids(lm, prompt)
    assert_same_greedy(lm, ids, trace.ids, _hf_greedy(lm, ids, n), tie=2 * rounding(fam))
    # and every few steps is the brute-force distribution, its token the best up to a near-tie
    for k, step in list(enumerate(trace.steps))[:: max(1, len(trace.steps) // 6)]:
        logits = next_token_logits(lm.model, ids + trace.ids[:k])
        assert float(logits.max() - logits[step.id]) <= 2 * rounding(fam), k
        check_step(step, stats(logits, step.id), rounding(fam))


def test_forced_prefix_equals_score_and_continues_like_generate(fam):
    _, _, lm = fam
    n = 2 * WINDOW
    trace = attempt(fam, "force", lambda: probe.generate(lm, LONG, max_new_tokens=n, force=FORCE))
    if trace is REFUSED:
        return
    forced = [s for s in trace.steps if s.forced]
    scored = probe.score(lm, LONG, FORCE)
    assert [s.id for s in forced] == scored.ids and len(forced) >= 2
    for f, s in zip(forced, scored.steps):
        assert f.logprob == pytest.approx(s.logprob, abs=rounding(fam)) and f.rank == s.rank
    assert trace.forced_text == FORCE
    ids = encode(lm, render(lm, LONG), FORCE).ids  # prompt + forced, tokenized together
    free = [s.id for s in trace.steps if not s.forced]
    assert_same_greedy(lm, ids, free, _hf_greedy(lm, ids, n), tie=2 * rounding(fam))
    first = trace.steps[len(forced)]
    check_step(first, stats(next_token_logits(lm.model, ids), first.id), rounding(fam))


@pytest.mark.parametrize("prompt", [SHORT, LONG], ids=["short", "long"])
def test_multi_token_watch_is_the_exact_product(fam, prompt):
    _, _, lm = fam
    trace = attempt(fam, "watch", lambda: probe.generate(lm, prompt, max_new_tokens=WINDOW + 2, watch=WATCH))
    if trace is REFUSED:
        return
    rendered = render(lm, prompt)
    watch_ids = {}
    for w in WATCH:
        enc = encode(lm, rendered, w)
        assert not enc.straddles
        watch_ids[w] = enc.answer_ids
    assert max(len(v) for v in watch_ids.values()) > 1
    ids = _prompt_ids(lm, prompt)
    per_token = WATCH_ROUNDING_OF.get(fam[0], rounding(fam))
    for k, step in enumerate(trace.steps):
        if k % 3 and k != len(trace.steps) - 1:
            continue  # brute force on every third step (and the last): past the window anyway
        ctx0 = ids + trace.ids[:k]
        for w, wids in watch_ids.items():
            logp, ctx = 0.0, list(ctx0)
            for t in wids:
                logp += float(torch.log_softmax(next_token_logits(lm.model, ctx), -1)[t])
                ctx.append(t)
            # in log space (an absolute tolerance on the probability would hide errors on improbable
            # strings); a string of n tokens sums n log-probabilities, each within the family's bound
            bound = len(wids) * per_token
            assert step.watch[w] > 0 and math.log(step.watch[w]) == pytest.approx(logp, abs=bound), (k, w)
    # the watched strings did not disturb the generation itself
    assert_same_greedy(lm, ids, trace.ids, probe.generate(lm, prompt, max_new_tokens=WINDOW + 2).ids,
                       tie=2 * rounding(fam))


# ---------------------------------------------------------------- logit lens


def test_logit_lens_last_layer_is_score(fam):
    _, _, lm = fam
    lens = attempt(fam, "lens", lambda: probe.layers(lm, LONG, TARGET))
    if lens is REFUSED:
        return
    t = probe.score(lm, LONG, TARGET)
    assert lens.n_layers == _text_config(lm).num_hidden_layers + 1
    assert lens.ids == tuple(t.ids)
    for cell, step in zip(lens.cells[-1], t.steps):
        assert cell.rank == step.rank and cell.logprob == pytest.approx(step.logprob, abs=rounding(fam))
    assert max(abs(a.logprob - b.logprob) for a, b in zip(lens.cells[0], lens.cells[-1])) > 1e-4


# ---------------------------------------------------------------- LoRA + diagnose


# PEFT itself refuses LoRA on these (Mamba out_proj); a LoRA on a router cannot run (probe refuses
# it by name: test_lora_on_a_router_is_refused_by_name)
LORA_REFUSED = {"mamba": {"out_proj"}, "falcon_h1": {"out_proj"}, "llama4_text": {"router"},
                "phimoe": {"router"}}


def lora_targets(model) -> list[str]:
    """Names of the linear layers inside the blocks (attention and MLP), from the module tree."""
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings()
    # the leaf name, or the whole path where the leaf is an index (zamba2's adapter lists hold
    # unnamed linears: a target "0" would match far more than meant)
    names = {name if name.rpartition(".")[2].isdigit() else name.rpartition(".")[2]
             for name, m in model.named_modules()
             if isinstance(m, (nn.Linear, Conv1D)) and m is not head and "." in name}
    names -= LORA_REFUSED.get(model.config.model_type, set())
    assert names, type(model).__name__
    return sorted(names)


@pytest.fixture(scope="module")
def pair(fam, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    name, folder, _ = fam
    key = ("pair", name)
    if key not in _built:
        model = AutoModelForCausalLM.from_pretrained(folder)
        targets = lora_targets(model)
        torch.manual_seed(1)
        cfg = LoraConfig(r=4, lora_alpha=32, target_modules=targets, init_lora_weights=False)
        out = tmp_path_factory.mktemp(f"{name}-lora")
        get_peft_model(model, cfg).save_pretrained(out)
        _built[key] = (targets, *probe.load_pair(folder, adapter=out))
    return _built[key]


def test_lora_pair_through_diagnose(fam, pair):
    _, _, lm = fam
    targets, base, tuned = pair
    assert base.model is tuned.model
    b, t = probe.score(base, LONG, TARGET), probe.score(tuned, LONG, TARGET)
    p = probe.score(lm, LONG, TARGET)
    assert b.ids == t.ids == p.ids
    for x, y in zip(b.steps, p.steps):  # the base side is the plain model
        assert x.logprob == pytest.approx(y.logprob, abs=1e-5)
    assert max(abs(x.logprob - y.logprob) for x, y in zip(b.steps, t.steps)) > 1e-3, targets
    n = WINDOW + 4
    d = attempt(fam, "diagnose", lambda: probe.diagnose(base, tuned, LONG, expected=" Rome", force=" Rome",
                                                        max_new_tokens=n))
    if d is REFUSED:
        return
    assert d.verdict in VERDICTS and [r.name for r in d.runs] == ["tuned", "tuned_forced", "base", "base_forced"]
    apart = {
        "tuned": probe.generate(tuned, LONG, max_new_tokens=n),
        "tuned_forced": probe.generate(tuned, LONG, max_new_tokens=n, force=" Rome"),
        "base": probe.generate(base, LONG, max_new_tokens=n),
        "base_forced": probe.generate(base, LONG, max_new_tokens=n, force=" Rome"),
    }
    # diagnose runs the four runs as one padded batch: batched vs alone, the family's bound,
    # and at least 5e-4: gemma4_text once came out 1.14e-4 apart in a full-suite run (within
    # 5.2e-6 on seeds 0-3 with measure_rounding.py; the cause of that one was not found)
    tol = max(5e-4, rounding(fam))
    for run_name, alone in apart.items():
        run, handle = d.run(run_name), (tuned if run_name.startswith("tuned") else base)
        nf = sum(s.forced for s in alone.steps)  # the forced tokens: the same ids, no choice
        assert run.trace.ids[:nf] == alone.ids[:nf] and sum(s.forced for s in run.trace.steps) == nf, run_name
        prefix = encode(handle, render(handle, LONG), " Rome").ids if nf else _prompt_ids(handle, LONG)
        same = nf + assert_same_greedy(handle, prefix, run.trace.ids[nf:], alone.ids[nf:], tie=2 * tol)
        for x, y in zip(run.trace.steps[:same], alone.steps[:same]):
            assert x.logprob == pytest.approx(y.logprob, abs=tol), run_name
    assert d.expected_traces["base"].total_logprob != pytest.approx(d.expected_traces["tuned"].total_logprob)


@pytest.mark.parametrize("arch", ["llama4_text", "phimoe"])
def test_lora_on_a_router_is_refused_by_name(arch, tmp_path):
    """A LoRA on every linear layer, routers included: an error naming the adapter, the module
    and the cause (not PEFT's "'tuple' object has no attribute 'dtype'" on the first forward)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = save_tiny(tmp_path / "model", arch, "bpe")
    model = AutoModelForCausalLM.from_pretrained(folder)
    targets = sorted(set(lora_targets(model)) | {"router"})
    get_peft_model(model, LoraConfig(r=4, target_modules=targets)).save_pretrained(tmp_path / "lora")
    with pytest.raises(ValueError) as err:
        probe.load_pair(folder, adapter=tmp_path / "lora")
    message = str(err.value)
    assert "'default'" in message and str(tmp_path / "lora") in message
    assert ".router" in message and "tuple" in message and "exclude_modules=['router']" in message


# ---------------------------------------------------------------- cache rows (support check "select")

SELECT_PROMPTS = [f"{a} {b} is" for a in ("The capital of", "A", "Hello world", "Count to")
                  for b in ("France", "Japan", "China", "Peru", "Italy", "Spain", "one", "red")]


def _built_lm(arch, tok, tmp_path_factory):
    if arch not in _built:
        folder = save_tiny(tmp_path_factory.mktemp(arch), arch, tok)
        _built[arch] = (arch, folder, probe.load(folder))
    return _built[arch]


@pytest.mark.parametrize("arch,tok,selects", [("llama", "unigram", True), ("minimax", "unigram", False),
                                              ("jamba", "bpe", True)])
def test_rows_leave_and_copy_a_generation_batch_exactly_or_not_at_all(arch, tok, selects, tmp_path_factory):
    """Finished rows leave a batch, and samples continue one prefill, by selecting cache rows
    (reorder_cache). MiniMax keeps its linear-attention state beside the cache's layers, where
    that does not reach: both raised transformers' tensor-size RuntimeError. The support check
    "select" finds it; there finished rows stay and each sample is prefilled apart."""
    from probe.diagnosis.result import sample_seed
    from probe.engine.support import supports

    _, folder, lm = _built_lm(arch, tok, tmp_path_factory)
    assert supports(lm, "select") is selects
    by_len: dict = {}
    for p in SELECT_PROMPTS:  # one length: no padding, so nothing here may be refused
        by_len.setdefault(len(_prompt_ids(lm, p)), []).append(p)
    # prompts of one length and a stop string that ends one of them early while the others go
    # on: the shortest start of a row's text that no other row's text holds (the tiny models'
    # texts change from run to run with the tokenizer's vocabulary order, so search for one)
    found = []
    for same in (g for g in by_len.values() if len(g) >= 3):
        texts = [probe.generate(lm, p, max_new_tokens=6).text for p in same]
        found += [(len(t[:n]), t[:n], same) for t in texts for n in range(1, len(t) + 1)
                  if t[:n].strip() and "\ufffd" not in t[:n] and sum(t[:n] in u for u in texts) == 1]
    _, stop, same = min(found, key=lambda f: f[0])
    alone = [probe.generate(lm, p, max_new_tokens=6, stop=stop) for p in same]
    assert min(len(a.steps) for a in alone) < 5 and sum(len(a.steps) == 6 for a in alone) >= 2
    for got, want in zip(probe.generate_many(lm, same, max_new_tokens=6, stop=stop, progress=False), alone):
        _assert_same(got, want)

    base, tuned = probe.load_pair(folder, folder)
    with pytest.warns(probe.IdenticalModelsWarning):
        d = probe.diagnose(base, tuned, same[0], expected=" Paris", max_new_tokens=4, samples=2, seed=3)
    for name, model in (("tuned", tuned), ("base", base)):
        want = [probe.generate(model, same[0], max_new_tokens=4, do_sample=True, seed=sample_seed(3, name, i)).text
                for i in range(2)]
        assert list(d.run(name).sample_texts) == want, name
