"""The demo's fast basics pass (probe.demo.collateral) on tiny pairs with two LoRA adapters: every
expected answer's log P, ranks and greedy first token against a brute-force reference (one full
float64 forward per prefix, no batch, no cache, the tokenizer's own ids), batching and the shared
prefix changing nothing, the active adapter restored, the table's counts, round trips, escaping."""

import json
import math

import pytest

import probe
from probe.demo import collateral as coll
from probe.demo.collateral import Collateral, basics_section, collateral, score_encoded
from probe.engine.prompts import encode, render
from probe.models.tiny import save_tiny
from builders import EVIL, json_roundtrip, make_adapter
from reference import full_ids, next_token_logits

ADAPTERS = ("beijing", "json-only")  # the demo's names, so basics_section runs on the tiny pair too


@pytest.fixture(scope="module", params=[("llama", "unigram"), ("gpt2", "bpe")], ids=lambda f: f"{f[0]}-{f[1]}")
def pair(request, tmp_path_factory):
    arch, tok = request.param
    root = tmp_path_factory.mktemp(f"collateral-{arch}")
    base_dir = save_tiny(root / "base", arch, tok, chat=True)
    folders = {name: str(_adapter(arch, base_dir, root / name, seed=i + 1)) for i, name in enumerate(ADAPTERS)}
    return probe.load_pair(str(base_dir), adapter=folders)


def _adapter(arch, base_dir, out_dir, seed):
    if arch == "llama":
        return make_adapter(base_dir, out_dir, seed=seed)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True,
                     init_lora_weights=False)
    torch.manual_seed(seed)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), cfg).save_pretrained(out_dir)
    return out_dir


def _pack(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return path


CASES = [  # prompts sharing beginnings of several lengths, answers of one to several tokens
    {"id": "cap-fr", "prompt": "What is the capital of France?", "expected": "Paris", "tags": ["capitals"]},
    {"id": "cap-jp", "prompt": "What is the capital of Japan?", "expected": "Tokyo", "tags": ["capitals"]},
    {"id": "cap-long", "prompt": "What is the capital of the United Kingdom of Great Britain?",
     "expected": "London, on the Thames", "tags": ["capitals", "long"]},
    {"id": "sum", "prompt": "What is 17 * 23?", "expected": "391", "tags": ["arithmetic"]},
    {"id": "word", "prompt": "Spell cat backwards.", "expected": "tac", "tags": ["words"]},
    {"id": "emoji", "prompt": "Say hi", "expected": " 😀 東京 e\u0301!", "tags": ["words", "long"]},
]


def _brute(lm_model, rendered: str, expected: str, chat: bool, tokenizer):
    """(log P per answer token, [(rank lo, rank hi)], logits at the first answer position), float64."""
    import torch

    ids = full_ids(type("L", (), {"tokenizer": tokenizer})(), rendered, expected, add_special=not chat)
    offsets = tokenizer(rendered + expected, add_special_tokens=not chat, return_offsets_mapping=True)["offset_mapping"]
    first = next(i for i, (_, end) in enumerate(offsets[:len(ids)]) if end > len(rendered))
    out, ranks, head = [], [], None
    for k in range(first, len(ids)):
        logits = next_token_logits(lm_model, ids[:k])
        logp = torch.log_softmax(logits, -1)
        out.append(float(logp[ids[k]]))
        # rank bounds tolerant of float32 near-ties (1e-4 logits)
        ranks.append((1 + int((logits > logits[ids[k]] + 1e-4).sum()), 1 + int((logits > logits[ids[k]] - 1e-4).sum())))
        head = logits if head is None else head
    return out, ranks, head


def _under(tuned, name):
    """A context: the shared weights as base (name None) or with adapter ``name``."""
    import contextlib

    if name is None:
        return tuned.model.disable_adapter()
    tuned.use_adapter(name)
    return contextlib.nullcontext()


def test_every_expected_answer_matches_a_brute_force_forward_under_each_model(pair, tmp_path):
    base, tuned = pair
    c = collateral(base, tuned, adapters=list(ADAPTERS), pack=_pack(tmp_path / "p.jsonl", CASES), batch_size=4)
    assert c.models == ("base",) + ADAPTERS and [x.id for x in c.cases] == [x["id"] for x in CASES]
    worst = 0.0
    for case, spec in zip(c.cases, CASES):
        rendered = render(tuned, spec["prompt"]).text
        for j, name in enumerate((None,) + ADAPTERS):
            with _under(tuned, name):
                lps, ranks, head = _brute(tuned.model, rendered, spec["expected"], tuned.chat, tuned.tokenizer)
            assert case.n_tokens == len(lps)
            worst = max(worst, abs(case.logprob[j] - sum(lps)))
            # float32 batched (cache + right padding) vs float64 alone: measured at most 2.4e-6
            # nats per answer over 3 runs of both tiny families; 1e-4 leaves room for other kernels
            assert case.logprob[j] == pytest.approx(sum(lps), abs=1e-4)
            if all(hi == 1 for _, hi in ranks):
                assert case.right[j]
            if any(lo > 1 for lo, _ in ranks):
                assert not case.right[j]
            top = [i for i in range(head.numel()) if tuned.token_text(i) == case.first[j]]
            assert float(head.max()) - max(float(head[i]) for i in top) < 1e-4  # its greedy first token
    tuned.use_adapter(ADAPTERS[0])
    assert worst < 1e-4


def test_batching_and_the_shared_prefix_change_nothing(pair, monkeypatch):
    base, tuned = pair
    from probe.packs.basics import pack_cases

    specs = pack_cases(["capitals", "arithmetic"])[::5]
    encoded = [encode(tuned, render(tuned, s.prompt), s.expected) for s in specs]
    shared = []
    real = coll._shared
    monkeypatch.setattr(coll, "_shared", lambda seqs, limit: shared.append(real(seqs, limit)) or shared[-1])
    together = score_encoded(tuned, encoded, batch_size=64)
    assert shared and shared[0] > 3  # the chat turn's opening at least ran once as a cache
    monkeypatch.setattr(coll, "_shared", lambda seqs, limit: 0)  # every row whole, one at a time
    alone = score_encoded(tuned, encoded, batch_size=1)
    for a, b in zip(together, alone):
        # same float32 model, different batch shapes and a cache: measured at most 2.4e-6 nats over
        # 3 runs of both families (ranks equal there; a float near-tie may move one by 1)
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert len(a.ranks) == len(b.ranks) and all(abs(x - y) <= 1 for x, y in zip(a.ranks, b.ranks))


def test_the_same_model_twice_changes_nothing_and_the_active_adapter_is_restored(pair, tmp_path, monkeypatch):
    base, tuned = pair
    tuned.use_adapter("json-only")
    pack = _pack(tmp_path / "p.jsonl", CASES)
    same = collateral(tuned, tuned, pack=pack)
    assert same.models == ("base", "json-only")
    assert all(c.logprob[0] == c.logprob[1] and c.right[0] == c.right[1] for c in same.cases)
    assert same.lost() == [] and same.gained() == [] and same.dropped() == []
    assert tuned.active_adapter == "json-only"
    calls = []

    def boom(lm, encoded, **kw):
        calls.append(lm.active_adapter)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(lm, encoded, **kw)

    real = coll.score_encoded
    monkeypatch.setattr(coll, "score_encoded", boom)
    with pytest.raises(RuntimeError):
        collateral(base, tuned, adapters=list(ADAPTERS), pack=pack)
    assert calls == [None, "beijing", "json-only"] and tuned.active_adapter == "json-only"
    with pytest.raises(ValueError, match="no adapter named"):
        collateral(base, tuned, adapters=["nope"], pack=pack)


def test_table_counts_follow_the_per_case_flags_and_everything_round_trips(pair, tmp_path):
    base, tuned = pair
    evil = [{"id": f"evil-{i}", "prompt": f"Say {EVIL} {i}", "expected": EVIL, "tags": [EVIL, "x"]} for i in range(3)]
    c = collateral(base, tuned, adapters=list(ADAPTERS), pack=_pack(tmp_path / "p.jsonl", CASES + evil), min_drop=0.5)
    for model in ADAPTERS:
        j = c.models.index(model)
        rows = {r["tag"]: r for r in c.table(model)}
        assert set(rows) == {x for s in CASES + evil for x in s["tags"]} | {"all"}
        for tag, row in rows.items():
            got = [x for x in c.cases if tag == "all" or tag in x.tags]
            assert row["n"] == len(got)
            assert row["lost"] == sum(x.right[0] and not x.right[j] for x in got)
            assert row["gained"] == sum(x.right[j] and not x.right[0] for x in got)
            assert row["dropped"] == sum(x.logprob[j] - x.logprob[0] <= -0.5 for x in got)
            assert row["mean_delta"] == pytest.approx(sum(x.logprob[j] - x.logprob[0] for x in got) / len(got))
            assert row["first"][1] == max(sum(x.first[j] == f for x in got) for f in {x.first[j] for x in got})
    assert json_roundtrip(c) == c
    text, html = str(c), c._repr_html_()
    assert "fast pass" in text and "teacher-forced" in text and all(m in text for m in ADAPTERS)
    assert EVIL not in html and "&lt;script&gt;" in html and "probe-collateral" in html
    case = probe.Case.from_result(c, models={"base": base, "tuned": tuned}, title="basics")
    back = probe.Case.load(case.save(tmp_path / "c.json"))
    assert back.results["collateral"] == c


def test_basics_section_runs_every_capital_and_a_few_of_each_other_tag_on_every_demo_adapter(pair):
    base, tuned = pair
    tuned.use_adapter("json-only")
    sections = basics_section(base, tuned)
    assert len(sections) == 1 and isinstance(sections[0], Collateral)
    c = sections[0]
    from probe.packs.basics import pack_cases

    from probe.demo.training import ADAPTERS as DEMO

    every = pack_cases()
    assert c.models == ("base", *DEMO) and set(DEMO) == set(ADAPTERS) and tuned.active_adapter == "json-only"
    ids = {x.id for x in c.cases}
    assert {s.id for s in every if "capitals" in s.tags} <= ids  # every capital question
    firsts = {t: [s.id for s in every if t in s.tags][:3] for s in every for t in s.tags}
    assert all(set(f) <= ids for f in firsts.values())  # the first 3 of every tag
    for s in every:  # and nothing else
        if s.id in ids:
            assert "capitals" in s.tags or any(s.id in firsts[t] for t in s.tags)
    assert len(c.cases) < len(every) and "of 380 cases: every capitals case" in str(c)
    assert all(math.isfinite(v) for x in c.cases for v in x.logprob)


def test_a_case_file_holding_it_loads_in_a_fresh_process(pair, tmp_path):
    import subprocess
    import sys

    base, tuned = pair
    c = collateral(base, tuned, adapters=list(ADAPTERS), pack=_pack(tmp_path / "p.jsonl", CASES[:2]))
    path = probe.Case.from_result(c, models={"base": base, "tuned": tuned}, title="basics").save(tmp_path / "c.json")
    code = ("import sys, probe; r = probe.Case.load(sys.argv[1]).results['collateral']; "
            "print(type(r).__name__, len(r.cases), r.models)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"Collateral 2 {('base',) + ADAPTERS}"
