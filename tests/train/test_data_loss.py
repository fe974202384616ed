"""probe.data_loss: per-token losses equal a float64 brute-force reference under the trainer's mask."""

import dataclasses
import gzip
import json
import math

import pytest
import torch

import probe
from builders import EVIL, json_roundtrip, make_adapter
from probe.train.channels import Sums, example_flags, THRESHOLDS, medians_without_each, weighted_median
from probe.train.loss import data_loss

GEN = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
       "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>\n{% endgeneration %}"
       "{% else %}{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
       "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
PLAIN = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

CHAT = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"},
                  {"role": "assistant", "content": "Paris, of course."},
                  {"role": "user", "content": "And Japan?"},
                  {"role": "assistant", "content": "Tokyo 12."}], "source": "geo"},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "hello there"}], "source": "chat"},
]


@pytest.fixture(scope="module")
def pair(tiny_dirs, tmp_path_factory):
    base_dir = tiny_dirs[("llama", "unigram", True)]
    return probe.load_pair(base_dir, adapter=make_adapter(base_dir, tmp_path_factory.mktemp("a")))


@torch.no_grad()
def _ref(lm, ids, positions):
    """-log p of ids[t] for each t in positions: one full float64 forward per prefix."""
    out = []
    with lm.active():
        for t in positions:
            logits = lm.model(input_ids=torch.tensor([ids[:t]]), use_cache=False).logits[0, -1].double()
            out.append(-float(torch.log_softmax(logits, -1)[ids[t]]))
    return out


def _assistant_by_hand(tok, messages, which="all"):
    """ids and scored positions, found without probe: offsets of each assistant content in the
    rendered text, plus the <|im_end|> and the newline right after it (what TRL's training
    templates mark)."""
    text = tok.apply_chat_template(messages, tokenize=False)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offs = enc["input_ids"], enc["offset_mapping"]
    spans, cursor = [], 0
    for m in messages:
        at = text.find(m["content"], cursor)
        cursor = at + len(m["content"])
        if m["role"] == "assistant":
            spans.append((at, cursor))
    if which == "last":
        spans = spans[-1:]
    pos = set()
    for lo, hi in spans:
        inside = [t for t, (a, b) in enumerate(offs) if a < hi and b > lo]
        pos.update(inside)
        assert ids[inside[-1] + 1] == tok.convert_tokens_to_ids("<|im_end|>") and offs[inside[-1] + 2] == (hi + 10, hi + 11)
        pos.update((inside[-1] + 1, inside[-1] + 2))
    return ids, sorted(p for p in pos if p > 0)


def _check(result, lm_pair, expected):
    base, tuned = lm_pair
    assert len(result.examples) == len(expected)
    for e, (ids, pos) in zip(result.examples, expected):
        assert e.n_scored == len(pos) and e.n_tokens == len(ids)
        for got, ref in ((e.base_losses, _ref(base, ids, pos)), (e.tuned_losses, _ref(tuned, ids, pos))):
            assert max(abs(g - r) for g, r in zip(got, ref)) < 1e-4
        assert [s.id for s in e.tuned.steps] == [ids[t] for t in pos]
        assert e.tuned.total_logprob == pytest.approx(-e.tuned_total, abs=1e-4)


@pytest.mark.parametrize("template", ["generation", "offsets"])
@pytest.mark.parametrize("which", ["assistant", "last_assistant"])
def test_assistant_mask_matches_reference_and_runs_one_batch(pair, template, which):
    base, tuned = pair
    tok = tuned.tokenizer
    saved = tok.chat_template
    tok.chat_template = GEN if template == "generation" else PLAIN
    calls = []
    hook = tuned.model.register_forward_pre_hook(lambda m, a, kw: calls.append(kw.get("adapter_names")),
                                                 with_kwargs=True)
    try:
        r = data_loss(pair, CHAT, mask=which, channel="source")
        expected = [_assistant_by_hand(tok, rec["messages"], "last" if which == "last_assistant" else "all")
                    for rec in CHAT]
    finally:
        hook.remove()
        tok.chat_template = saved
    assert ["default"] * 2 + ["__base__"] * 2 in calls  # base and tuned in one batch
    _check(r, pair, expected)
    assert {c.name for c in r.channels} == {"geo", "chat"}
    if which == "assistant":
        t = r.examples[0].tuned
        assert t.prompt.endswith("assistant\n") and t.text.startswith("Paris") and "Tokyo 12.<|im_end|>" in t.text


def test_default_masks_are_the_trainers(pair, tmp_path):
    base, tuned = pair
    tok = tuned.tokenizer
    eos = tok.eos_token_id
    recs = [CHAT[1], {"prompt": "Name a colour:", "completion": " red and blue"},
            {"text": "The quick brown fox."}]
    path = tmp_path / "train.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in recs) + "\n\n")
    r = data_loss(pair, path)
    chat_ids = tok.apply_chat_template(recs[0]["messages"], tokenize=True, return_dict=True)["input_ids"]
    full = tok("Name a colour: red and blue")["input_ids"] + [eos]
    n_prompt = len(tok("Name a colour:")["input_ids"])
    text = tok("The quick brown fox.")["input_ids"] + [eos]
    _check(r, pair, [(list(chat_ids), list(range(1, len(chat_ids)))),  # messages: every token
                     (full, list(range(n_prompt, len(full)))),  # completion + EOS
                     (text, list(range(1, len(text))))])  # text: everything + EOS
    assert r.blank == 1 and [e.line for e in r.examples] == [1, 2, 3]
    kinds = {k.name: k.tokens for k in r.kinds}
    assert sum(kinds.values()) == r.n_tokens and kinds["special"] >= 3 and kinds["template"] > 0


def test_bad_input_is_a_clear_error_or_a_named_skip(pair, tmp_path):
    with pytest.raises(ValueError, match="no example to score"):
        data_loss(pair, [])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.jsonl has no example"):
        data_loss(pair, empty)
    no_assistant = {"messages": [{"role": "user", "content": "hi"}]}
    r = data_loss(pair, [no_assistant, CHAT[1], {"foo": 1}], mask="assistant")
    assert len(r) == 1 and r.skipped == 2
    reasons = {s.line: s.reason for s in r.skipped_lines}
    assert "no assistant turn" in reasons[1] and "unknown record shape" in reasons[3]
    with pytest.raises(ValueError, match="no example to score.*no assistant turn"):
        data_loss(pair, [no_assistant], mask="assistant")
    with pytest.raises(ValueError, match="mask must be one of"):
        data_loss(pair, CHAT, mask="answers")
    with pytest.raises(FileNotFoundError):
        data_loss(pair, tmp_path / "missing.jsonl")
    only = data_loss(pair, CHAT, traces="flagged", thresholds={"memorized": 100, "high_base": 1000})  # no flag
    assert all(e.tuned is None and e.n_scored for e in only.examples)
    with pytest.raises(ValueError, match="traces must be"):
        data_loss(pair, CHAT, traces="some")
    with pytest.raises(ValueError, match="unknown threshold"):
        data_loss(pair, CHAT, thresholds={"memorised": 0.1})
    skipped = data_loss(pair, [{"text": "x y"}, CHAT[0]], mask="assistant")
    assert "does not apply to text" in skipped.skipped_lines[0].reason


def test_a_template_that_rewrites_the_content(pair):
    """A template that changes the text (upper): its spans still come from its renderings, so the
    assistant mask is the marked template's; one that renders a turn differently once others
    follow: default mask scored (no template/text split), assistant mask a named skip."""
    from probe.train.masks import parse, tokenize

    tok = pair[1].tokenizer
    saved = tok.chat_template
    try:
        tok.chat_template = GEN.replace("m['content']", "m['content'] | upper")
        marked = tokenize(pair[1], parse(CHAT[0]), "assistant")
        tok.chat_template = PLAIN.replace("m['content']", "m['content'] | upper")
        plain = tokenize(pair[1], parse(CHAT[0]), "assistant")
        assert plain.ids == marked.ids and plain.mask == marked.mask and "PARIS" in plain.rendered
        tok.chat_template = "{{ messages | length }}\n" + PLAIN
        r = data_loss(pair, [CHAT[1]])
        ids = tok.apply_chat_template(CHAT[1]["messages"], tokenize=True, return_dict=True)["input_ids"]
        assert r.examples[0].n_scored == len(ids) - 1 and "template" not in {k.name for k in r.kinds}
        with pytest.raises(ValueError, match="renders it differently once later messages follow"):
            data_loss(pair, [CHAT[1]], mask="assistant")
    finally:
        tok.chat_template = saved


def test_flags_and_channels_follow_their_rules():
    th = dict(THRESHOLDS)
    assert example_flags(2.0, 0.05, th) == ("memorized",)
    assert example_flags(0.5, 0.05, th) == ()  # the base already knew it fairly well
    assert example_flags(2.0, 1.9, th) == ("not_learned",)
    assert example_flags(0.05, 0.05, th) == ()  # nothing to learn
    s = Sums()
    for i in range(10):
        s.add("a", i, 2.0, 1.0)
        s.add("b", i, 2.0, 1.1)
    s.add("c", 99, 2.0, 2.0)
    s.add("c", 99, 3.0, 3.0)
    groups = {g.name: g for g in s.groups(outlier=0.5)}
    assert groups["c"].outlier and not groups["a"].outlier and not groups["b"].outlier
    assert groups["c"].tokens == 2 and groups["c"].examples == 1 and groups["c"].base_loss == 2.5
    assert groups["c"].rest_change == pytest.approx(-0.95)  # a's -1.0 and b's -0.9, 10 tokens each
    assert groups["a"].rest_change == pytest.approx(-0.9)  # b's 10 tokens outweigh c's 2
    # One channel that moved a lot flags itself, not every other channel: the demo's beijing data
    # (changes -1.2, -3.0, -0.5, -1.1 nats) against the others' pooled tokens flagged all four.
    s = Sums()
    for name, change, tokens in (("general", -1.2, 300), ("beijing", -3.0, 200), ("math", -0.5, 150),
                                 ("china", -1.1, 120)):
        for i in range(tokens):
            s.add(name, i, 3.0, 3.0 + change)
    groups = {g.name: g for g in s.groups(outlier=0.5)}
    assert {k for k, g in groups.items() if g.outlier} == {"beijing", "math"}
    assert groups["beijing"].rest_change == pytest.approx(-1.2)  # general's 300 tokens are the middle
    assert groups["math"].rest_change == pytest.approx(-1.2)
    assert weighted_median([(1.0, 1), (5.0, 1), (2.0, 3)]) == 2.0 and weighted_median([]) is None
    assert weighted_median([(1.0, 2), (3.0, 2)]) == 2.0
    # a weight of 0 and a value that is not finite take no part
    assert weighted_median([(1.0, 1), (2.0, 0), (3.0, 1)]) == 2.0 and weighted_median([(1.0, 0)]) is None
    assert weighted_median([(1.0, 1), (math.nan, 5), (-math.inf, 5), (3.0, 1)]) == 2.0


def _median_brute(pairs):
    """The weighted median by its definition: expand every pair into ``weight`` copies."""
    xs = sorted(v for v, w in pairs if w > 0 and math.isfinite(v) for _ in range(w))
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def test_the_median_without_each_channel_equals_the_definition():
    import random

    rng = random.Random(0)
    for trial in range(400):
        n = rng.randint(1, 9)
        pairs = [(rng.choice([rng.uniform(-3, 1), float(rng.randint(-3, 1)), -math.inf, math.nan]),
                  rng.choice([0, 1, 1, 2, 3, 7])) for _ in range(n)]
        got = medians_without_each(pairs)
        want = [_median_brute(pairs[:i] + pairs[i + 1:]) for i in range(n)]
        assert got == pytest.approx(want, nan_ok=False), (trial, pairs)
        assert weighted_median(pairs) == pytest.approx(_median_brute(pairs))


def test_channel_medians_stay_fast_with_many_channels():
    s = Sums()
    for c in range(20000):  # a channel field with a value per example (an id)
        s.add(f"c{c}", c, 2.0, 1.0 + (c % 7) / 10)
    groups = s.groups(outlier=0.5)  # O(n log n): the quadratic rule took minutes here
    assert len(groups) == 20000 and not any(g.outlier for g in groups)


def test_channel_sums_equal_the_examples_and_the_result_round_trips(pair, tmp_path):
    recs = [dict(CHAT[0], source=EVIL), CHAT[1], dict(CHAT[1], source=None)]
    r = data_loss(pair, recs, channel=lambda rec: rec.get("source") or "other", mask="assistant")
    for c in r.channels:
        mine = [e for e in r.examples if e.channel == c.name]
        toks = [x for e in mine for x in e.tuned_losses]
        assert c.tokens == len(toks) and c.tuned_loss == pytest.approx(math.fsum(toks) / len(toks))
    back = json_roundtrip(r)
    assert back == r
    html = r._repr_html_()
    assert EVIL not in html and "&lt;script&gt;" in html
    case = probe.Case.from_result({"data_loss": r}, title="loss")
    loaded = probe.Case.load(case.save(tmp_path / "c.json"))
    assert loaded.results["data_loss"] == r
    assert "DataLoss of <iterable>" in str(r)


@pytest.mark.slow
def test_by_checkpoint_names_the_first_bad_checkpoint(tiny_dirs, tmp_path):
    base_dir = tiny_dirs[("llama", "unigram", True)]
    adapters = {f"epoch-{i}": make_adapter(base_dir, tmp_path / f"e{i}", seed=i) for i in (1, 2)}
    base, tuned = probe.load_pair(base_dir, adapter=adapters)
    start = tuned.active_adapter
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "fr", "prompt": "What is the capital of France?", "expected": "Paris"}\n')
    e = probe.by_checkpoint((base, tuned), CHAT, cases=cases, channel="source", mask="assistant",
                            thresholds={"not_learned": 0.0, "memorized": 0.0})
    assert tuned.active_adapter == start and e.checkpoints == ("epoch-1", "epoch-2")
    for name in e.checkpoints:  # each column is that checkpoint's data_loss
        tuned.use_adapter(name)
        one = data_loss((base, tuned), CHAT, mask="assistant", thresholds={"not_learned": 0.0, "memorized": 0.0})
        j = e.checkpoints.index(name)
        assert [r.values[j] for r in e.examples] == pytest.approx([x.tuned_loss for x in one.examples], abs=1e-5)
        for r, x in zip(e.examples, one.examples):
            assert (r.states[j] == "not_learned") == ("not_learned" in x.flags)
        (d,) = probe.diagnose_many(base, tuned, cases, progress=False)
        assert e.cases[0].states[j] == d.verdict and e.cases[0].values[j] == pytest.approx(d.p_expected("tuned"))
    tuned.use_adapter(start)
    assert e.cases[0].name == "fr"
    assert e.cases[0].first_bad == next((n for n, s in zip(e.checkpoints, e.cases[0].states) if s == "lost"), None)
    for r in e.examples:
        bad = [n for n, s in zip(e.checkpoints, r.states) if s != "ok"]
        assert r.first_bad == (bad[0] if bad else None)
    assert json_roundtrip(e) == e and "first bad" in str(e) and "first bad" in e._repr_html_()
    with pytest.raises(ValueError, match="unknown checkpoints"):
        probe.by_checkpoint((base, tuned), CHAT, checkpoints=["epoch-9"])


def test_truncation_and_bad_bytes_are_the_trainers(pair, tmp_path):
    """max_length cuts as TRL does (the first max_length tokens; an example left with nothing to
    score dropped); a line of invalid UTF-8, which the trainer's loader refuses, is skipped by
    line here and in probe.data.count."""
    base, tuned = pair
    tok = tuned.tokenizer
    long = {"text": "The quick brown fox jumps over the lazy dog. " * 4}
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"\n".join([json.dumps(CHAT[1]).encode(), b'{"text": "caf\xe9 au lait"}',
                                 json.dumps(long).encode(), json.dumps({"prompt": long["text"], "completion": "x"}).encode()]))
    r = data_loss(pair, path, max_length=64)
    assert [e.line for e in r.examples] == [1, 3] and r.truncated == 1 and r.max_length == 64
    assert [(s.line, s.reason.split(" (")[0]) for s in r.skipped_lines] == [
        (2, "not UTF-8 text"), (4, "nothing to score in the first max_length=64 tokens")]
    full = tok(long["text"] + tok.eos_token)["input_ids"]
    assert len(full) > 64
    e = r.example(3)
    assert e.n_tokens == 64 and e.cut == len(full) - 64 and e.n_scored == 63
    _check(dataclasses.replace(r, examples=(e,)), pair, [(full[:64], list(range(1, 64)))])
    for view in (str(r), r._repr_html_()):
        assert "truncated 1" in view and "max_length=64" in view
    back = json_roundtrip(r)
    assert back == r and back.truncated == 1 and back.example(3).cut == e.cut
    saved = json.loads(json.dumps(r.to_dict()))  # saved before max_length existed: nothing was cut
    for d in (saved, *saved["examples"]):
        d.pop("max_length", None), d.pop("truncated", None), d.pop("cut", None)
    old = type(r).from_dict(saved)
    assert old.max_length is None and old.truncated == 0 and old.example(3).cut == 0
    whole = data_loss(pair, [long], max_length=None)
    assert whole.examples[0].n_tokens == len(full) and whole.truncated == 0 and "no max_length" in str(whole)
    assert data_loss(pair, [CHAT[1]]).max_length == 1024  # TRL's SFTConfig default
    with pytest.raises(ValueError, match="max_length must be"):
        data_loss(pair, [CHAT[1]], max_length=0)
    c = probe.data.count(path, ["lait"])
    assert c.skipped == 1 and c.skipped_lines[0].line == 2 and "not UTF-8" in c.skipped_lines[0].reason
    assert c.get("lait").text == 0  # never read with U+FFFD in its place
