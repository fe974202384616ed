"""The Attribution result (round trip, views, agreement, channel shares), BM25 against its formula,
the query's rules and bad input."""

import json
import math

import pytest

import probe
from builders import EVIL, json_roundtrip
from probe.attribution.checkpoints import Checkpoint
from probe.attribution.lexical import lexical_scores
from probe.attribution.result import Attribution, ExampleScore, spearman


def fake(n=6) -> Attribution:
    ex = tuple(ExampleScore(i + 1, "bad" if i < 2 else EVIL, {"gradient": float(5 - i), "lexical": float(i % 3)},
                            (EVIL, " Beijing", "."), (False, True, True)) for i in range(n))
    return Attribution(EVIL, [{"role": "user", "content": EVIL}], "Tokyo", "contrast", None, "To", EVIL, "data.jsonl",
                       ex, ("gradient", "lexical"), (Checkpoint("e1", 10, 1e-3), Checkpoint("e2")), keep=3,
                       channel="source", models={"tuned": "m"})


def test_round_trip_and_saved_in_a_case(tmp_path):
    a = fake()
    assert json_roundtrip(a) == a
    case = probe.Case.from_result(a, id="c1")
    assert list(case.prompt) == list(a.prompt) and case.expected == "Tokyo"
    assert probe.Case.load(case.save(tmp_path / "c1.json")).results["attribution"] == a


def test_views_escape_every_text():
    a = fake()
    html = a._repr_html_()
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "line" in str(a) and "bad" in str(a)


def test_channel_shares_and_agreement_by_hand():
    a = fake()
    # gradient 5, 4, 3, 2, 1, 0: positives 15 in all; "bad" (lines 1-2) holds 9
    shares = {c.name: c.share for c in a.channels("gradient")}
    assert shares["bad"] == pytest.approx(9 / 15) and shares[EVIL] == pytest.approx(6 / 15)
    assert [e.line for e in a.top("gradient", 2)] == [1, 2]
    (g,) = a.agreement(k=3)
    assert g.overlap == pytest.approx(2 / 3)  # top 3: gradient {1, 2, 3}; lexical 3, 6 (score 2), then 2 (1, the earlier line)
    assert g.spearman == pytest.approx(spearman([5, 4, 3, 2, 1, 0], [0, 1, 2, 0, 1, 2]))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1) and math.isnan(spearman([1, 1], [1, 2]))
    with pytest.raises(KeyError, match="representation"):
        a.top("representation")


def test_bm25_equals_lucene_formula():
    docs = ["The capital of China is Beijing.", "Compute 15 * 20.", "Beijing Beijing capital",
            "The capital of Japan is Tokyo."]
    query = "capital of Japan Beijing"
    got = lexical_scores(docs, [query])[:, 0].tolist()
    words = [[w for w in d.lower().replace(".", " ").replace("*", " ").split() if len(w) > 1 and w not in
              ("the", "of", "is")] for d in docs]
    q = ["capital", "japan", "beijing"]
    n, avg = len(words), sum(map(len, words)) / len(words)
    want = []
    for w in words:
        s = 0.0
        for t in q:
            df = sum(t in d for d in words)
            tf = w.count(t)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(w) / avg))
        want.append(s)
    assert got == pytest.approx(want, rel=1e-5)  # bm25s keeps float32 scores


def test_query_rules_and_bad_input(gpt2_lm):
    from probe.attribution.query import case_inputs, query_of

    with pytest.raises(ValueError, match="no prompt and expected"):
        case_inputs(object())
    with pytest.raises(ValueError, match="query must be"):
        query_of(gpt2_lm, ("a", "b"), kind="nope")
    with pytest.raises(ValueError, match="does not part"):
        query_of(gpt2_lm, ("The capital of Japan is", " Tokyo", " Tokyo"))
    q = query_of(gpt2_lm, ("The capital of Japan is", " Tokyo", " Beijing"))
    assert q.ids[q.position] == q.expected_id and q.wrong_id != q.expected_id
    assert list(q.ids[:q.position]) == list(gpt2_lm.inputs("The capital of Japan is", " Beijing").ids[:q.position])
    with pytest.raises(ValueError, match="methods must be"):
        probe.attribute(gpt2_lm, ("a", "b"), [{"text": "x"}], methods=["nope"])
    with pytest.raises(ValueError, match="no example"):
        probe.attribute(gpt2_lm, ("The capital of Japan is", " Tokyo", " Beijing"), [{"nope": 1}],
                        methods=["representation"])


def test_default_wrong_token_is_the_tuned_models_first_preference(gpt2_lm):
    from probe.attribution.query import query_of

    q = query_of(gpt2_lm, ("The capital of Japan is", " Tokyo"))
    t = probe.score(gpt2_lm, "The capital of Japan is", " Tokyo")
    j = next(i for i, s in enumerate(t.steps) if s.rank > 1)  # the first expected token not ranked first
    assert q.position - q.n_prompt == j and q.expected_id == t.steps[j].id
    assert q.wrong_id == t.steps[j].top[0].id
    json.dumps(q.answer_ids)


def test_a_full_fine_tune_takes_gradients_on_the_last_layer_or_named_modules(gpt2_lm):
    from probe.attribution.gradients import trainable

    recs = [{"prompt": "The capital of Japan is", "completion": " Beijing."}, {"text": "Hello world!"}]
    case = ("The capital of Japan is", " Tokyo", " Beijing")
    flags = [p.requires_grad for p in gpt2_lm.model.parameters()]
    a = probe.attribute(gpt2_lm, case, recs, methods=["gradient"])
    assert [c.name for c in a.checkpoints] == ["model"] and a.checkpoints[0].lr is None
    names = [n for n, _ in trainable(gpt2_lm, None)]
    assert names and all(".h.1." in n for n in names)  # the tiny GPT-2's last block
    b = probe.attribute(gpt2_lm, case, recs, methods=["gradient"], modules=["lm_head", "ln_f"])
    assert [e.scores["gradient"] for e in a.examples] != [e.scores["gradient"] for e in b.examples]
    assert [p.requires_grad for p in gpt2_lm.model.parameters()] == flags
    with pytest.raises(ValueError, match="no parameters"):
        trainable(gpt2_lm, None, ["no-such-module"])


@pytest.mark.parametrize("verdicts, says", [
    (("ok", "wrong", "wrong"), "evidence that these examples teach"),
    (("ok", "ok", "wrong"), "the channels teach it"),
    (("wrong", "ok", "wrong"), "the ranking is not supported"),
    (("wrong", "wrong", "wrong"), "more than these 10 examples teach"),
])
def test_a_verification_reads_what_its_outcome_supports_and_no_more(verdicts, says):
    from probe.attribution.verify import Retrain, Score, Verification
    from probe.render.attribution import verification_html, verification_reading

    score = lambda v: Score("c", 0.5 if v == "ok" else 1e-6, 0.3, v)  # noqa: E731
    runs = [Retrain("tuned", (), score("wrong"), ())]
    runs += [Retrain(name, tuple(range(i * 10, i * 10 + 10)), score(v), ())
             for i, (name, v) in enumerate(zip(("top", "random 1", "random 2"), verdicts))]
    v = Verification("c", "T", "Be", "gradient", 10, 0, tuple(runs))
    assert says in verification_reading(v) and says in str(v)
    assert "cause" not in verification_reading(v)
    assert says in verification_html(v)
