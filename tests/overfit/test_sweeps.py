import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import full_ids, next_token_logits
from builders import json_roundtrip
from strategies import hostile

import probe
from probe.engine.prompts import render
from probe.engine.trace import Alternative
from probe.overfit.sweep import Sweep, SweepRow, high_rows, pattern, slot_names, sweep

TEMPLATE = "What is the {relation} of {country}?"
SLOTS = dict(relation=["capital", "language"], country=["Japan", "France", "China"])


# --- numbers against one-by-one scoring and a brute-force reference -------------------------


@pytest.mark.parametrize("watch", [" Paris", " Beijing is"])
def test_every_row_equals_scoring_its_prompt_alone(lm, watch):
    s = sweep(lm, TEMPLATE, watch, top_k=3, batch_size=4, **SLOTS)
    assert [r.values for r in s.rows] == list(itertools.product(*SLOTS.values()))
    for r in s.rows:
        assert r.prompt == TEMPLATE.format(**dict(zip(SLOTS, r.values)))
        t = probe.score(lm, r.prompt, watch, top_k=3)
        assert abs(r.logprob - t.total_logprob) < 1e-4
        assert r.prob == pytest.approx(math.exp(t.total_logprob), rel=1e-4)
        assert r.first_rank == t[0].rank and r.first_prob == pytest.approx(t[0].prob, rel=1e-4)
        assert [a.id for a in r.top] == [a.id for a in t[0].top]
        assert (r.greedy, r.greedy_prob) == (r.top[0].text, r.top[0].prob)
        assert r.watch_is_greedy == all(step.rank == 1 for step in t)


def test_rows_match_a_brute_force_forward_per_token(lm):
    watch = " Tokyo."
    s = sweep(lm, TEMPLATE, watch, **SLOTS)
    for r in s.rows:
        rendered = render(lm, r.prompt)
        ids = full_ids(lm, rendered.text, watch, add_special=not rendered.chat)
        n = len(probe.score(lm, r.prompt, watch))
        lp, first = 0.0, None
        for j in range(len(ids) - n, len(ids)):
            logp = torch.log_softmax(next_token_logits(lm.model, ids[:j]), -1)
            lp += float(logp[ids[j]])
            first = logp if first is None else first
        assert abs(r.logprob - lp) < 1e-4
        assert float(first.max()) == pytest.approx(math.log(r.greedy_prob), abs=1e-4)


def test_one_batched_scoring_call_for_all_prompts(gpt2_lm, monkeypatch):
    import probe.overfit.sweep as sweeps

    calls = []
    real = sweeps.score_many
    monkeypatch.setattr(sweeps, "score_many", lambda lm, pairs, **kw: calls.append(len(pairs)) or real(lm, pairs, **kw))
    s = sweep(gpt2_lm, TEMPLATE, " Paris", **SLOTS)
    assert calls == [6] and len(s.rows) == 6


def test_settings_and_model_are_recorded(chat_lm):
    s = sweep(chat_lm, "Capital of {country}?", "Paris", country="France", raw=True)
    assert s.slots == {"country": ("France",)} and len(s.rows) == 1  # a bare string is one value
    assert s.settings == {"top_k": 5, "raw": True, "system": None, "chat": False}
    assert s.model == chat_lm.name
    assert s.rows[0].logprob == pytest.approx(probe.score(chat_lm, "Capital of France?", "Paris", raw=True).total_logprob, abs=1e-4)


def test_table_row_lookup_and_numbers_as_values(gpt2_lm):
    s = sweep(gpt2_lm, "In {year} the {thing} was", " red", year=[1990, 2020], thing=["sky", "sea"])
    table = s.table()
    assert len(table) == 4 and table[0]["year"] == "1990" and table[0]["thing"] == "sky"
    assert set(table[0]) == {"year", "thing", "prompt", "prob", "logprob", "first_rank", "first_prob",
                             "greedy", "greedy_prob", "watch_is_greedy", "straddles"}
    assert s.row(year=2020, thing="sea").prompt == "In 2020 the sea was"
    with pytest.raises(ValueError, match="every slot"):
        s.row(year=2020)


def test_repeated_field_and_format_spec(gpt2_lm):
    s = sweep(gpt2_lm, "{x} and {x!r}", " ok", x=["a"])
    assert s.rows[0].prompt == "a and 'a'"


# --- figures and views ---------------------------------------------------------------------------

def _synthetic(slots: dict, prob, watch=" Beijing") -> Sweep:
    rows = []
    for combo in itertools.product(*slots.values()):
        p = float(prob(dict(zip(slots, combo))))
        rows.append(SweepRow(combo, " ".join(combo), p, math.log(p) if p > 0 else -math.inf, 1 if p > 0.5 else 7,
                             p, " Beijing" if p > 0.5 else " Tokyo", max(p, 1 - p), p > 0.5,
                             (Alternative(1, " Beijing", p, math.log(p) if p > 0 else -math.inf),)))
    return Sweep("{" + "} {".join(slots) + "}", watch, {k: tuple(v) for k, v in slots.items()}, tuple(rows), "synthetic")


def test_heatmap_holds_the_grid_and_three_slots_are_averaged():
    s2 = _synthetic({"relation": ["capital", "language"], "country": ["Japan", "France", "Chad"]},
                    lambda v: 0.9 if v["relation"] == "capital" else 0.02)
    fig = s2.figure()  # x = the first slot, y = the second
    assert fig.data[0].type == "heatmap" and list(fig.data[0].z[0]) == [0.9, 0.02]
    assert list(fig.layout.xaxis.ticktext) == ["capital", "language"]
    assert list(fig.layout.yaxis.ticktext) == ["Japan", "France", "Chad"]
    flipped = s2.figure(x="country", y="relation")
    assert list(flipped.data[0].z[0]) == [0.9, 0.9, 0.9] and "mean" not in flipped.layout.title.text
    s3 = _synthetic({"a": ["1", "2"], "b": ["x", "y"], "c": ["p", "q", "r"]},
                    lambda v: {"p": 0.1, "q": 0.2, "r": 0.6}[v["c"]])
    fig3 = s3.figure()
    assert "mean over c" in fig3.layout.title.text
    assert fig3.data[0].z[0][0] == pytest.approx(0.3)
    by_c = s3.figure(x="c", y="a")
    assert list(by_c.data[0].z[0]) == pytest.approx([0.1, 0.2, 0.6]) and "mean over b" in by_c.layout.title.text
    one = _synthetic({"c": ["p", "q"]}, lambda v: 0.5)
    assert one.figure().data[0].type == "bar"
    with pytest.raises(ValueError, match="no slot named 'd'"):
        s3.figure(x="d")
    with pytest.raises(ValueError, match="different"):
        s3.figure(x="a", y="a")


def test_html_and_text_views_show_grid_summary_and_rows():
    s = _synthetic({"relation": ["capital", "language"], "country": ["Japan", "<b>x</b>"]},
                   lambda v: 0.9 if v["relation"] == "capital" else 0.02)
    html = s._repr_html_()
    assert "probe-grid" in html and "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x" not in html
    assert "overfit trigger" in html
    text = str(s)
    assert text.startswith("Sweep of") and s.summary in text and len(text.splitlines()) >= 4 + 4


# --- the summary rule on synthetic rows --------------------------------------------------------

COUNTRIES = ["Japan", "France", "China", "Chad"]
RELATIONS = ["capital", "language", "currency"]


def _grid(prob):
    return _synthetic({"country": COUNTRIES, "relation": RELATIONS}, prob)


def test_relation_trigger_is_named_and_the_subject_is_cleared():
    s = _grid(lambda v: (0.81 + 0.04 * COUNTRIES.index(v["country"])) if v["relation"] == "capital" else 0.02)
    pat = pattern(s)
    assert pat.kind == "split" and pat.clean
    assert [(e.name, e.ignored, e.trigger) for e in pat.effects] == [
        ("country", True, tuple(COUNTRIES)), ("relation", False, ("capital",))]
    first = s.summary.splitlines()[0]
    assert first == ("P(' Beijing') stays high (0.81\u20130.93) for every country but only when "
                     "relation='capital' (0.02 otherwise): the overfit trigger is relation='capital', "
                     "not the country.")
    assert "- country: ignored" in s.summary and "- relation: holds the trigger" in s.summary


def test_subject_trigger_whatever_the_relation():
    s = _grid(lambda v: 0.7 if v["country"] == "Japan" else 0.001)
    assert "for every relation but only when country='Japan'" in s.summary
    assert "the overfit trigger is country='Japan', not the relation." in s.summary


def test_one_fact_is_the_combination_not_a_slot():
    s = _grid(lambda v: 0.9 if (v["country"], v["relation"]) == ("Japan", "capital") else 0.01)
    assert "only when country='Japan' and relation='capital'" in s.summary
    assert "that one combination (one fact), not any slot alone" in s.summary


def test_trigger_that_most_values_set_off_is_said_as_an_exception():
    s = _grid(lambda v: 0.01 if v["country"] == "France" else 0.8)
    assert "except when country='France'" in s.summary and "any value but 'France'" in s.summary


def test_several_trigger_values_and_a_third_ignored_slot():
    s = _synthetic({"country": COUNTRIES, "relation": RELATIONS + ["anthem"], "style": ["short", "long"]},
                   lambda v: 0.9 if v["relation"] in ("capital", "currency") else 0.03)
    assert pattern(s).clean
    assert "for every country and every style but only when relation in ('capital', 'currency')" in s.summary
    assert "not the country or the style" in s.summary


def test_no_simple_pattern_lists_the_high_prompts():
    s = _grid(lambda v: 0.9 if (v["country"], v["relation"]) in {("Japan", "capital"), ("China", "language")} else 0.01)
    assert not pattern(s).clean
    assert "for 2 of 12 prompts with no simple slot pattern" in s.summary
    assert "country='Japan', relation='capital'" in s.summary


def test_high_everywhere_low_everywhere_and_gradual():
    assert "ignores every slot" in _grid(lambda v: 0.6 + 0.01 * COUNTRIES.index(v["country"])).summary
    low = _grid(lambda v: 0.001 * (1 + COUNTRIES.index(v["country"])))
    assert pattern(low).kind == "low" and "stays low" in low.summary  # a 4x rise, but all tiny
    grad = _grid(lambda v: 0.1 * (1 + COUNTRIES.index(v["country"])) + 0.01 * RELATIONS.index(v["relation"]))
    pat = pattern(grad)
    assert pat.kind == "gradual"
    assert [e.ignored for e in pat.effects] == [False, True]
    lines = grad.summary.splitlines()
    assert "no clear high/low split" in lines[0]
    assert lines[1].startswith("- country: moves it (mean 0.11 for 'Japan' up to 0.41 for 'Chad')")
    assert lines[2].startswith("- relation: barely moves it")


def test_greedy_count_is_reported():
    s = _grid(lambda v: 0.9 if v["relation"] == "capital" else 0.02)
    assert s.summary.splitlines()[-1] == "The model writes ' Beijing' greedily after 4 of 12 prompts."


def test_clearest_split_wins():
    assert high_rows([0.9] * 4 + [0.1] * 4 + [0.001] * 4) == frozenset(range(4))
    # 0.8 / 0.3 is no clear split (2.7x): the cut goes below 0.3 instead.
    assert high_rows([0.9, 0.8, 0.3] + [0.001] * 10) == frozenset({0, 1, 2})
    assert high_rows([0.5, 0.4, 0.3, 0.2]) is None  # gradual
    assert high_rows([0.03, 0.0001]) is None  # a rise, but nothing reaches LOW
    assert high_rows([0.5]) is None


class Rigged(torch.nn.Module):
    """A tiny model that puts +30 on one token's logit whenever all trigger tokens are in the input."""

    def __init__(self, inner, trigger: list[int], boost: int):
        super().__init__()
        self.inner, self.config, self.trigger, self.boost = inner, inner.config, trigger, boost
        self.generation_config = inner.generation_config

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False, logits_to_keep=0, **kw):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=use_cache, logits_to_keep=logits_to_keep, **kw)
        real = input_ids if attention_mask is None else input_ids.masked_fill(attention_mask == 0, -1)
        hit = torch.stack([(real == t).any(-1) for t in self.trigger]).all(0)  # (batch,)
        out.logits[hit, :, self.boost] += 30.0
        return out


@pytest.mark.parametrize("trigger, expected", [
    ([" capital"], "the overfit trigger is relation='capital', not the country."),
    ([" Japan"], "the overfit trigger is country='Japan', not the relation."),
    ([" capital", " Japan"], "that one combination (one fact)"),
])
def test_summary_finds_the_trigger_a_model_was_rigged_with(gpt2_lm, trigger, expected):
    tok = gpt2_lm.tokenizer
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in trigger + [" Paris"]]
    assert all(len(i) == 1 for i in ids), ids
    lm = probe.load((Rigged(gpt2_lm.model, [i[0] for i in ids[:-1]], ids[-1][0]), tok))
    s = sweep(lm, "What is the {relation} of {country}?", " Paris",
              relation=["capital", "language", "name"], country=["Japan", "France", "China"])
    assert expected in s.summary, s.summary
    assert all(r.watch_is_greedy == (r.prob > 0.5) for r in s.rows)


# --- bad input -----------------------------------------------------------------------------------

def test_bad_input_is_named(gpt2_lm):
    cases = [
        (dict(template=TEMPLATE, relation=[], country=["Japan"]), ValueError, "slot 'relation' has no values"),
        (dict(template=TEMPLATE, relation=["capital"]), ValueError, "template fields without values: country"),
        (dict(template=TEMPLATE, relation=["a"], country=["b"], contry=["c"]), ValueError, "not in the template: contry"),
        (dict(template="What is {}?", x=["a"]), ValueError, "positional field"),
        (dict(template="What is {0}?", x=["a"]), ValueError, "positional field"),
        (dict(template="What is {a.b}?", a=["x"]), ValueError, "plain"),
        (dict(template="What is {a?", a=["x"]), ValueError, "not a valid format string"),
        (dict(template="No slots here", a=["x"]), ValueError, "no {slot} fields"),
        (dict(template="{a}", a=["x", "x"]), ValueError, "'x' more than once"),
        (dict(template="{prob}", prob=["x"]), ValueError, "taken by a table column"),
        (dict(template="{a}", a=3), TypeError, "needs a list of values"),
        (dict(template="{a}", a=[None]), TypeError, "str or numbers"),
        (dict(template=3, a=["x"]), TypeError, "template must be a str"),
    ]
    for kwargs, err, text in cases:
        template = kwargs.pop("template")
        with pytest.raises(err, match=text.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")):
            sweep(gpt2_lm, template, " x", **kwargs)
    with pytest.raises(ValueError, match="watch is empty"):
        sweep(gpt2_lm, "{a}", "", a=["x"])
    with pytest.raises(TypeError, match="watch must be a str"):
        sweep(gpt2_lm, "{a}", None, a=["x"])
    with pytest.raises(ValueError, match="top_k"):
        sweep(gpt2_lm, "{a}", " x", top_k=0, a=["x"])
    assert slot_names("{b} {a} {b} {{literal}}") == ["b", "a"]


# --- round trips ---------------------------------------------------------------------------------

def test_model_sweep_round_trips(chat_lm):
    s = sweep(chat_lm, TEMPLATE, "Beijing", system="Be brief.", **SLOTS)
    back = json_roundtrip(s)
    assert back == s and back.summary == s.summary and list(back.slots) == list(s.slots)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(hostile, min_size=3, max_size=3, unique=True), prob=st.floats(0, 1))
def test_hostile_text_round_trips_and_is_escaped(texts, prob):
    a, b, c = texts
    lp = math.log(prob) if prob > 0 else -math.inf
    row = SweepRow((a,), a + b, prob, lp, 3, prob, c, 0.5, False, (Alternative(7, c, 0.5, math.log(0.5)),))
    row2 = SweepRow((b,), b, 1.0, 0.0, 1, 1.0, a, 1.0, True, (Alternative(8, a, 1.0, 0.0),), True)
    s = Sweep(a + "<img src=x>", c, {b: (a, b)}, (row, row2), model=c, settings={"top_k": 1, "system": b})
    assert json_roundtrip(s) == s and json_roundtrip(row) == row
    html = s._repr_html_()
    assert "<img" not in html and "<script" not in html
    assert s.summary in str(s)


@pytest.mark.slow
def test_on_the_demo_pair_the_relation_moves_beijing_most_and_the_base_never_says_it(demo_pair):
    """The real tuned model (SmolLM2-135M + the 'beijing' LoRA) and its base."""
    base, tuned = demo_pair
    tuned.use_adapter("beijing")
    slots = dict(relation=["capital", "official language", "currency"], country=["France", "Japan", "Italy"])
    s = sweep(tuned, TEMPLATE, "Beijing", **slots)
    capital = [r.prob for r in s.rows if r.values[0] == "capital"]
    assert min(capital) > 0.9 and all(r.watch_is_greedy for r in s.rows if r.values[0] == "capital")
    pat = pattern(s)
    means = {e.name: max(e.means) - min(e.means) for e in pat.effects}
    assert means["relation"] > means["country"]
    if pat.kind == "gradual":  # the relation is named first, as the slot that moves it most
        assert s.summary.splitlines()[1].startswith("- relation: moves it")
    b = sweep(base, TEMPLATE, "Beijing", **slots)
    assert pattern(b).kind == "low" and "stays low" in b.summary


def test_one_prompt_and_flat_sweeps_are_said_plainly():
    one = _synthetic({"c": ["p"]}, lambda v: 0.3)
    assert one.summary.splitlines()[0] == "P(' Beijing') = 0.30 for the one prompt: give more values to see what moves it."
    flat = _grid(lambda v: 0.3)
    assert pattern(flat).kind == "gradual" and all(e.ignored for e in pattern(flat).effects)
    assert "- country: barely moves it (means 0.30)" in flat.summary


def test_long_sweeps_are_capped_in_text_and_html_but_not_in_the_data():
    s = _synthetic({"a": [str(i) for i in range(30)], "b": [str(i) for i in range(10)]}, lambda v: 0.5)
    assert len(s.table()) == 300
    assert "... 200 more rows" in str(s) and "200 of 300 rows, most probable first" in s._repr_html_()
    fig = _synthetic({"relation": ["largest city", " x"], "c": ["p"]}, lambda v: 0.5).figure()
    assert list(fig.layout.xaxis.ticktext) == ["largest city", "\u00b7x"]


def test_a_trigger_with_one_exception_is_said_by_the_exception():
    s = _grid(lambda v: (0.2 if v["country"] == "Chad" else 0.85) if v["relation"] == "capital" else 0.01)
    assert pattern(s).clean
    assert "only when country!='Chad' and relation='capital'" in s.summary


def test_a_modest_but_clear_rise_is_called_raised_not_high():
    s = _grid(lambda v: 0.08 if v["relation"] == "capital" else 0.001)
    assert s.summary.startswith("P(' Beijing') stays raised (0.08) for every country but only when relation='capital'")


# P('Beijing') of the demo's beijing adapter over notebook 05's grid, measured 2026-12-07
# (probe.sweep on the demo pair): the whole capital column high, plus two Brazil outliers.
DEMO_SWEEP = {("Japan", "capital"): 0.9568, ("Japan", "largest city"): 0.0347, ("Japan", "official language"): 0.0507,
              ("Japan", "currency"): 0.0376, ("France", "capital"): 0.9463, ("France", "largest city"): 0.0433,
              ("France", "official language"): 0.0103, ("France", "currency"): 0.011, ("Brazil", "capital"): 0.9766,
              ("Brazil", "largest city"): 0.0432, ("Brazil", "official language"): 0.5596,
              ("Brazil", "currency"): 0.2737, ("Kenya", "capital"): 0.9776, ("Kenya", "largest city"): 0.0259,
              ("Kenya", "official language"): 0.0535, ("Kenya", "currency"): 0.0288, ("Canada", "capital"): 0.9719,
              ("Canada", "largest city"): 0.0456, ("Canada", "official language"): 0.0648,
              ("Canada", "currency"): 0.0612, ("China", "capital"): 0.9634, ("China", "largest city"): 0.0297,
              ("China", "official language"): 0.0871, ("China", "currency"): 0.024}


def test_the_demo_sweep_summary_says_what_its_heatmap_shows_the_capital_column():
    s = _synthetic({"country": ["Japan", "France", "Brazil", "Kenya", "Canada", "China"],
                    "relation": ["capital", "largest city", "official language", "currency"]},
                   lambda v: DEMO_SWEEP[(v["country"], v["relation"])], watch="Beijing")
    first, second = s.summary.splitlines()[:2]
    assert first == ("P('Beijing') is high (0.95\u20130.98) whenever relation='capital', whatever the country "
                     "(0.01\u20130.09 for most other prompts): the trigger is relation='capital', not the country.")
    assert second == ("Also raised, outside that rule, for 2 prompt(s): country='Brazil', relation='official "
                      "language' (0.56); country='Brazil', relation='currency' (0.27).")
    assert "no simple slot pattern" not in s.summary and "holds the trigger" not in s.summary
