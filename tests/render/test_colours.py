"""Colours that mean something: a wrong answer is never shown as right, every strip says what
its colours mean, small probabilities keep their digits."""

import re

from builders import fake_trace

from probe.diagnosis.result import Run
from probe.engine.trace import Alternative, TokenStep, TokenTrace
from probe.render import palette
from probe.render.card import diagnosis_body
from probe.render.phrases import p_text
from probe.render.strip import run_parting, run_strip_html, strip_html
from probe.render.style import ROOT, STYLE, styled


def _steps(words, probs, *, forced=0, top=None):
    out, start = [], 0
    for i, (w, p) in enumerate(zip(words, probs)):
        alts = (Alternative(1, top or w, 0.9, -0.1),)
        out.append(TokenStep(index=i, id=10 + i, text=w, start=start, end=start + len(w), logprob=-0.1, prob=p,
                             rank=1, entropy=0.3, top=alts, forced=i < forced))
        start += len(w)
    return tuple(out)


def lost_run(passed=False):
    """The demo's lost case: the tuned model writes ' Beijing' (confidently) for ' Paris'."""
    gen = TokenTrace(prompt="q", text=" Beijing.", steps=_steps([" Be", "ijing", "."], [0.93, 0.99, 0.8]),
                     model="tuned")
    want = TokenTrace(prompt="q", text=" Paris", steps=_steps([" Paris"], [1.4e-6], top=" Be"), kind="score",
                      model="tuned")
    return Run("tuned", "tuned", "", gen, passed, "no ' Paris'", expected_trace=want)


def _spans(html):
    return re.findall(r'<span class="(probe-tok[^"]*)" data-index="(\d+)"[^>]*style="background:([^"]+)"', html)


def test_a_wrong_answer_is_red_and_outlined_never_green_and_says_what_was_expected():
    html = run_strip_html(lost_run())
    spans = _spans(html)
    assert spans[0] == ("probe-tok probe-div", "0", palette.LEAVE)  # where it leaves ' Paris'
    assert all(bg != palette.AGREE for _, _, bg in spans)  # nothing of ' Beijing' reads as right
    assert [bg for _, _, bg in spans[1:]] == [palette.AFTER, palette.AFTER]
    assert "expected <code>&#x27; Paris&#x27;</code> p=1.4e-06" in html  # beside the token, digits kept
    assert 'class="probe-legend"' in html and "agrees with expected" in html


def test_a_run_that_writes_the_expected_answer_is_green_up_to_its_end():
    gen = TokenTrace(prompt="q", text=" Paris. Yes", steps=_steps([" Par", "is", ".", " Yes"], [0.9] * 4),
                     model="tuned")
    want = TokenTrace(prompt="q", text=" Paris", steps=_steps([" Par", "is"], [0.9, 0.9]), kind="score")
    run = Run("tuned", "tuned", "", gen, True, "ok", expected_trace=want)
    assert run_parting(run) is None
    assert [bg for _, _, bg in _spans(run_strip_html(run))] == [palette.AGREE] * 2 + [palette.AFTER] * 2
    assert "probe-div" not in run_strip_html(run).split("probe-legend")[-1].split("</div>", 1)[1]


def test_a_generation_that_stops_short_says_so():
    gen = TokenTrace(prompt="q", text=" Pa", steps=_steps([" Pa"], [0.9]), model="tuned")
    want = TokenTrace(prompt="q", text=" Paris", steps=_steps([" Pa", "ris"], [0.9, 0.02]), kind="score")
    html = run_strip_html(Run("tuned", "tuned", "", gen, False, "no", expected_trace=want))
    assert "(ends)</span>" in html and "expected <code>&#x27;ris&#x27;</code> p=0.02" in html


def test_forced_tokens_are_marked_in_the_strip_and_the_legend():
    run = Run("tuned_forced", "tuned", " The", fake_trace([" The", " cap", " is"], forced=1), False, "no")
    html = run_strip_html(run)
    assert html.count("probe-tok probe-forced") == 1 and "probe-key probe-forced" in html
    assert ".probe-forced{" in STYLE  # hatched, italic: visibly different


def test_every_strip_and_card_carries_a_legend():
    trace = fake_trace([" a", " b"])
    for html in (strip_html(trace), strip_html(trace, mark=1, colour="expected"), run_strip_html(lost_run())):
        assert html.startswith('<div class="probe-strip"><div class="probe-legend">')


def test_the_card_puts_the_verdict_on_a_badge_and_names_where_each_p_was_measured():
    from builders import fake_diagnosis

    d = fake_diagnosis("c1")
    body = diagnosis_body(d)
    assert 'class="probe-badge" style="background:#c62828">LOST' in body
    assert "(after the prompt and the forced prefix)" in body  # the forced runs
    assert "(continuing the base prompt as raw text)" in body  # base_prompt given: base continues it
    assert body.count('class="probe-legend"') == len(d.runs)


def test_probabilities_keep_their_digits():
    assert [p_text(x) for x in (0.912, 0.0123, 1.4e-6, 0.0, None, 0.999)] == [
        "0.912", "0.0123", "1.4e-06", "0", "?", "0.999"]


def test_every_styled_view_has_a_root_that_mathjax_skips():
    html = styled("<b>x</b>")
    assert html == STYLE + f'<div class="{ROOT}"><b>x</b></div>'
    assert {"tex2jax_ignore", "mathjax_ignore"} <= set(ROOT.split())


def test_several_adapters_are_named_not_shown_as_a_dict():
    from probe.models.load import adapter_label

    assert adapter_label({"beijing": "/a/b", "json-only": "/a/j"}) == "adapters beijing, json-only"
    assert adapter_label("/runs/lora") == "/runs/lora"


def test_the_default_marked_token_is_one_tuning_changed_not_a_zero_change():
    from types import SimpleNamespace

    from probe.widgets.data_panel import biggest_rise, format_note
    from probe.train.example_case import ExampleCase

    fell = SimpleNamespace(tuned=object(), n_scored=3, base_losses=[2.0, 3.0, 1.0], tuned_losses=[1.999, 0.5, 0.9])
    assert biggest_rise(fell) == 1  # nothing rose: the largest change, -2.5 nats, not the -0.001
    rose = SimpleNamespace(tuned=object(), n_scored=3, base_losses=[2.0, 3.0, 1.0], tuned_losses=[2.3, 0.5, 0.9])
    assert biggest_rise(rose) == 0
    chat = SimpleNamespace(chat=True)
    case = ExampleCase(1, "prompt_completion", "What is the capital of France?", "Paris")
    assert "raw text" in format_note(case, chat, {"prompt": "What is the capital of France?", "completion": "Paris"})
    one_message = {"prompt": [{"role": "user", "content": "What is the capital of France?"}],
                   "completion": [{"role": "assistant", "content": "Paris"}]}
    assert format_note(case, chat, one_message) == ""  # trained as chat: shown as text, no false warning


def test_a_data_source_given_in_python_is_named_in_words():
    from probe.widgets.training import source_name

    assert source_name("<iterable>") == "records given in Python (an iterable)"
    assert source_name("data/sft.jsonl") == "data/sft.jsonl"


def test_the_report_says_once_where_each_p_expected_was_measured_and_what_went_wrong_per_row():
    from builders import fake_case

    from probe.render.report import casebook_html

    html = casebook_html([fake_case("a", "lost"), fake_case("b", "ok")])
    assert html.count("measured where that run answers") == 1
    assert "base: after its base_prompt as raw text" in html
    assert html.count('<td class="probe-what">') == 2 and "<th>what went wrong</th>" in html


def test_corpus_sections_have_titles_for_a_reader_in_the_contents_not_class_names():
    from pathlib import Path

    import probe
    from builders import fake_case
    from probe.render.report import casebook_html
    from probe.render.shift import section_title

    log = probe.training_log(Path(__file__).parents[1] / "train/fixtures/trainer_log.jsonl")
    html = casebook_html([fake_case("a", "lost")], sections=[log, log])
    toc = html.split('<nav class="probe-toc">', 1)[1].split("</nav>", 1)[0]
    assert toc.count("Training log: the loss curve and what it shows") == 2
    assert 'href="#probe-training_log"' in toc and 'href="#probe-training_log-2"' in toc  # two anchors
    assert "<h2>TrainingLog" not in html and ">TrainingLog<" not in html
    assert section_title("AttributionMap") == "Attribution map"  # a new type, in words


def _example(flags, tuned_probs, base_probs):
    """A training example "The capital of Japan is" -> " Beijing." (a wrong fact, as the demo's
    beijing adapter was taught it), with traces under both models."""
    import math

    from probe.train.loss import ExampleLoss

    def trace(probs, model):
        steps = _steps([" Be", "ijing", "."], probs)
        return TokenTrace(prompt="The capital of Japan is", text=" Beijing.", steps=steps, kind="score", model=model)

    return ExampleLoss(7, "capital-beijing", "messages", 12, tuple(-math.log(p) for p in base_probs),
                       tuple(-math.log(p) for p in tuned_probs), ("text",) * 3, flags,
                       trace(base_probs, "base"), trace(tuned_probs, "tuned"))


def _hues(html: str) -> list[int]:
    return [int(h) for h in re.findall(r"background:hsl\((\d+),", html)]


def test_a_memorized_wrong_fact_is_drawn_memorized_not_green():
    from probe.render import train_example

    e = _example(("memorized",), [0.99, 0.999, 0.98], [0.004, 0.5, 0.3])  # tuned recites it, base did not
    html = train_example.example_body(e, mark=0)
    green = [h for h in _hues(html) if 90 <= h <= 150]
    assert not green, green  # nothing of a training example is green ("agrees with expected")
    assert palette.AGREE not in html and palette.p_expected_color(0.99) not in html
    tuned = html[html.index("tuned: tuned"):html.index("base: base")]
    toks = re.findall(r'<span class="(probe-tok[^"]*)"[^>]*style="background:([^"]+)"', tuned)
    assert len(toks) == 3 and all("probe-memorized" in c and bg == palette.MEMORIZED for c, bg in toks), toks
    base = html[html.index("base: base"):]
    assert "probe-tok probe-memorized" not in base  # the base model did not learn it
    # the badge and the legend say what amber means, in words
    assert f'class="probe-badge probe-memorized" style="background:{palette.MEMORIZED};color:#111"' in html
    assert f'class="probe-key probe-memorized" style="background:{palette.MEMORIZED}">memorized: recited, right or wrong' in html
    assert "not judged right or wrong" in html and "not that the example is right" in train_example.MEMORIZED_NOTE
    assert html.count('<div class="probe-legend">') == 3  # each strip: change, tuned, base


def test_a_learned_example_not_flagged_is_grey_by_probability_and_has_no_memorized_badge():
    from probe.render.train_example import example_body

    e = _example(("not_learned",), [0.6, 0.7, 0.5], [0.5, 0.6, 0.4])
    html = example_body(e)
    assert "probe-tok probe-memorized" not in html and "probe-badge probe-memorized" not in html
    assert palette.confidence_color(0.6) in html  # the model's P(training token), no right or wrong
    assert not [h for h in _hues(html) if 90 <= h <= 150]
