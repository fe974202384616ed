import re

import pytest

import probe
from probe.render.chart import comparison_figure, trace_figure
from probe.widgets import DiagnoseLab, Explorer
from probe.widgets.explorer import explore, typed


def _tokens_in(html: str) -> int:
    return len(re.findall(r'class="probe-tok', html))


def test_explorer_scores_both_models_and_shows_a_strip_per_model(tiny_dirs, tmp_path):
    base = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    tuned = probe.load(tiny_dirs[("gpt2", "bpe", False)], name="tuned copy")
    ex = Explorer(base, tuned, book=tmp_path / "book", background=False)
    ex.prompt.value, ex.answer.value, ex.which.value = "The capital of France is", " Paris. Tokyo.", "both"
    ex.run_button.click()
    assert ex.runner.error is None, ex.runner.error
    n = len(probe.score(base, "The capital of France is", " Paris. Tokyo."))
    assert _tokens_in(ex.strips.value) == 2 * n
    assert len(ex.chart.data) == 2 and len(ex.chart.data[0].x) == n
    assert "done" in ex.status.value and not ex.save_button.disabled
    # Picking a token shows its top-k table; a click on the chart does the same.
    ex.token.value = ("base", 1)
    assert "token 1" in ex.detail.value and ex.detail.value.count("<tr>") == 1 + 5
    ex._on_chart_click(ex.chart.data[0], type("P", (), {"point_inds": [2]})(), None)
    assert ex.token.value == ("tuned", 2) and "token 2" in ex.detail.value
    ex.note.value, ex.tags.value = "tuned drops Paris", "capitals, <b>x</b>"
    saved = ex.save()
    again = probe.Casebook(tmp_path / "book").get(saved.id)
    assert again == saved and again.results == ex.results
    assert again.prompt == "The capital of France is" and again.expected == " Paris. Tokyo."
    assert again.tags == ("capitals", "<b>x</b>") and again.note == "tuned drops Paris"
    assert [m.role for m in again.models] == ["tuned", "base"]


def test_explorer_generate_with_force_and_watch(tiny_dirs):
    lm = probe.load(tiny_dirs[("llama", "unigram", True)])
    ex = Explorer(lm, background=False)
    ex.prompt.value, ex.mode.value = "List three colors.", "generate"
    ex.force.value, ex.watch.value, ex.max_new_tokens.value = "```json\\n", "{, red", 6
    ex.run_button.click()
    trace = ex.results["base"]
    assert trace.forced_text == "```json\n" and set(trace.steps[-1].watch) == {"{", "red"}
    assert _tokens_in(ex.strips.value) == len(trace) and "probe-forced" in ex.strips.value
    assert len(ex.chart.data) == 3  # log p + two watched strings


def test_explorer_first_divergence_marks_the_token(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    ex = Explorer(lm, background=False)
    ex.prompt.value, ex.answer.value, ex.mode.value = "Hello", " the capital of Japan", "first divergence"
    ex.run_button.click()
    d = ex.results["base"]
    assert d.diverged and "probe-div" in ex.strips.value and f'data-index="{d.index}"' in ex.strips.value


def test_explorer_errors_become_messages_not_dead_widgets(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    ex = Explorer(lm, background=False)
    ex.prompt.value, ex.answer.value = "Hello", ""
    ex.run_button.click()
    assert "failed" in ex.status.value and "needs a target" in ex.status.value
    assert not ex.run_button.disabled  # still usable
    ex.answer.value = " world"
    ex.run_button.click()
    assert "done" in ex.status.value


def test_explorer_runs_in_the_background(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    ex = Explorer(lm)
    ex.prompt.value, ex.answer.value = "Hello", " world"
    ex.run_button.click()
    ex.runner.wait(60)
    assert ex.runner.error is None and _tokens_in(ex.strips.value) >= 1


def test_hostile_token_text_is_escaped_in_strips_and_detail(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    ex = Explorer(lm, background=False)
    ex.prompt.value, ex.answer.value = "<img src=x onerror=alert(1)>", " <img src=x onerror=alert(1)>"
    ex.run_button.click()
    assert "<img" not in ex.strips.value and "<img" not in ex.detail.value


def test_diagnose_lab_shows_the_verdict_card(tiny_dirs):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    lab = DiagnoseLab(lm, lm, background=False)
    lab.prompt.value, lab.expected.value, lab.force.value = "Hello", " the", " the"
    lab.run_button.click()
    assert lab.runner.error is None and lab.diagnosis.verdict == "not_triggered"
    assert "NOT_TRIGGERED" in lab.card.value and lab.card.value.count('class="probe-strip"') == 4
    lab.check.value, lab.expected.value = "answer expected", ""
    lab.run_button.click()
    assert "needs an expected answer" in lab.status.value


def test_charts_are_pure_functions_of_results(raw_lm):
    t = probe.generate(raw_lm, "The capital", max_new_tokens=4, watch=[" of"])
    fig = trace_figure(t, mark=1)
    assert len(fig.data) == 2 and list(fig.data[0].y) == [s.logprob for s in t.steps]
    c = probe.compare(raw_lm, raw_lm, "The capital", " of France")
    assert len(comparison_figure(c).data) == 3


def test_typed_escapes():
    assert typed("```json\\n") == "```json\n" and typed("é\\t") == "é\t"


def test_explore_rejects_unknown_mode(gpt2_lm):
    with pytest.raises(ValueError, match="mode"):
        explore({"m": gpt2_lm}, "nope", "a", "b")


def test_diagnose_lab_saves_the_diagnosis_into_the_casebook(tiny_dirs, tmp_path):
    lm = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    lab = DiagnoseLab(lm, lm, book=tmp_path / "book", background=False)
    assert lab.save_button.disabled
    lab.prompt.value, lab.expected.value, lab.force.value = "Hello", " the", " the"
    lab.run_button.click()
    lab.note.value, lab.tags.value = "seen in eval", "greetings"
    case = lab.save()
    assert probe.Casebook(tmp_path / "book").get(case.id).results["diagnosis"] == lab.diagnosis
    assert case.verdict == lab.diagnosis.verdict and case.tags == ("greetings",) and "saved case" in lab.status.value


def test_casebook_browser_lists_filters_and_opens_cases(tmp_path):
    from builders import fake_case

    from probe.widgets import CasebookBrowser

    book = probe.Casebook(tmp_path)
    book.add(fake_case("a", "lost", tags=("capitals",), note="<img src=x onerror=alert(1)>"))
    book.add(fake_case("b", "ok", tags=("json",)))
    (tmp_path / "cases" / "broken.json").write_text("{")
    ui = CasebookBrowser(tmp_path)
    assert [v for _, v in ui.cases.options] == ["a", "b"] and "2 of 2" in ui.status.value
    assert "broken.json" in ui.status.value  # unreadable files are shown, not fatal
    assert list(ui.verdict.options) == ["(any)", "lost", "ok"] and "json" in ui.tag.options
    ui.verdict.value = "ok"
    assert [v for _, v in ui.cases.options] == ["b"]
    ui.verdict.value, ui.text.value = "(any)", "img"
    assert [v for _, v in ui.cases.options] == ["a"]
    ui.cases.value = "a"
    assert 'class="probe-case"' in ui.view.value and "<img" not in ui.view.value
    book.add(fake_case("c", "never_had"))
    ui.text.value = ""
    ui.refresh()
    assert len(ui.cases.options) == 3 and "never_had" in ui.verdict.options
