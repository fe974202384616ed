"""TrainingLab's data side: channel -> examples -> token strips -> the case sent to diagnose."""

import json
import re

import pytest

import probe
from builders import EVIL, make_adapter
from probe.render.card import diagnosis_html
from probe.train.example_case import case_of, example_case, record_at, records_at
from probe.widgets import DiagnoseLab, TrainingLab
from probe.widgets.data_panel import channel_examples, force_before

import ipywidgets  # noqa: F401  (the test extra installs it: missing, fail, never skip)

RECORDS = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"},
                  {"role": "assistant", "content": f"Paris {EVIL}"}], "source": "geo"},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "hello there"}], "source": EVIL},
    {"prompt": "2 + 2 =", "completion": " 4", "source": "math"},
    {"text": "just text", "source": "math"},
    {"prompt": "3 + 3 =", "completion": " 6", "source": "math"},
]


@pytest.fixture(scope="module")
def pair(tiny_dirs, tmp_path_factory):
    base_dir = tiny_dirs[("llama", "unigram", True)]
    return probe.load_pair(base_dir, adapter=make_adapter(base_dir, tmp_path_factory.mktemp("a")))


@pytest.fixture(scope="module")
def data(pair, tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "train.jsonl"
    lines = [json.dumps(r) for r in RECORDS]
    path.write_text("\n".join(lines[:2] + ["   "] + lines[2:]) + "\n")  # a blank line shifts the numbers
    return path, probe.data_loss(pair, path, channel="source")


def _toks(html: str) -> int:
    return len(re.findall(r'class="probe-tok', html))


def test_case_of_each_record_shape():
    single = case_of(RECORDS[0])
    assert single.prompt == "What is the capital of France?" and single.expected == f"Paris {EVIL}"
    system = case_of(RECORDS[1])
    assert system.multi_turn and [m["role"] for m in system.prompt] == ["system", "user"]
    turns = case_of({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                  {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})
    assert [m["content"] for m in turns.prompt] == ["a", "b", "c"] and turns.expected == "d"
    assert case_of({"question": "q?", "answer": "a."}).prompt == "q?"
    lists = case_of({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "x"}]})
    assert (lists.prompt, lists.expected) == ("q", "x")
    assert case_of(RECORDS[2]).expected == " 4"
    with pytest.raises(ValueError, match="line 7 is a plain-text record"):
        case_of(RECORDS[3], 7)
    with pytest.raises(ValueError, match="no assistant turn"):
        case_of({"messages": [{"role": "user", "content": "a"}]})
    with pytest.raises(ValueError, match="unknown record shape"):
        case_of({"foo": 1})


def test_record_at_numbers_lines_as_data_loss_does(data):
    path, dl = data
    assert sorted(e.line for e in dl.examples) == [1, 2, 4, 5, 6]  # line 3 is blank
    assert record_at(path, 4) == RECORDS[2] and example_case(path, 6).expected == " 6"
    with pytest.raises(ValueError, match="line 3 is not a record"):
        record_at(path, 3)
    with pytest.raises(ValueError, match="has no line 99"):
        record_at(path, 99)
    assert record_at(RECORDS, 2) == RECORDS[1]
    assert records_at(path, [6, 1, 4]) == {1: RECORDS[0], 4: RECORDS[2], 6: RECORDS[4]}


def test_channel_example_token_and_the_diagnosis_card(data, pair):
    path, dl = data
    lab = TrainingLab(None, data_loss=dl, pair=pair, background=False)
    p = lab.panel
    assert "&lt;script" in p.table.value and "<script" not in p.table.value
    assert [v for _, v in p.channel.options] == [g.name for g in dl.channels]
    p.channel.value = "math"
    math = [e for e in dl.examples if e.channel == "math"]
    assert sorted(v for _, v in p.examples.options) == sorted(e.line for e in math)
    p.order.value = "line"
    assert [v for _, v in p.examples.options] == sorted(e.line for e in math)
    p.order.value = "largest loss drop first"
    changes = [dl.example(v).change for _, v in p.examples.options]
    assert changes == sorted(changes) and [v for _, v in p.examples.options] == [
        e.line for e in channel_examples(dl, "math")]
    with pytest.raises(ValueError, match="order must be"):
        channel_examples(dl, "math", "best")
    # An example: the change strip, the tuned and the base strip, one span per scored token.
    p.channel.value = "geo"
    e = dl.example(1)
    assert p.examples.value == 1 and _toks(p.view.value) == 3 * e.n_scored
    i = p.view.value.find("<script")
    assert i < 0, p.view.value[i - 400:i + 100]
    assert "&lt;" in p.view.value  # the tokens of EVIL, one span each
    rises = [t - b for b, t in zip(e.base_losses, e.tuned_losses)]
    assert p.token.value == rises.index(max(rises))
    assert len(re.findall(r'class="probe-tok[^"]*probe-div"', p.view.value)) == 3  # the picked token, each strip
    p.token.value = 2
    assert "token 2" in p.token_view.value and p.token_view.value.count("<tr>") == 3
    assert f"{e.tuned_losses[2] - e.base_losses[2]:+.3f}" in p.token_view.value
    # The case: the record's prompt and answer; force up to a token inside the answer.
    assert (p.case.prompt, p.case.expected) == ("What is the capital of France?", f"Paris {EVIL}")
    p.force.value = True
    assert p.force_text() is None  # token 2 is in the prompt part of the conversation
    steps = e.tuned.steps
    full = e.tuned.prompt + e.tuned.text
    at = full.rfind(p.case.expected)
    inside = [i for i, s in enumerate(steps) if at < len(e.tuned.prompt) + s.start < at + len(p.case.expected)]
    p.token.value = inside[-1]
    forced = p.force_text()
    assert forced and p.case.expected.startswith(forced)
    assert forced == full[at:len(e.tuned.prompt) + steps[inside[-1]].start]
    assert force_before(e, p.case.expected, inside[0] - 1) is None  # the answer's first token: nothing before it
    p.diagnose_button.click()
    assert p.runner.error is None, p.runner.error
    d = p.diagnosis
    assert d.expected == p.case.expected and d.force == forced and p.card.value == diagnosis_html(d)
    again = probe.diagnose(*pair, p.case.prompt, expected=p.case.expected, force=forced, max_new_tokens=32)
    assert again.verdict == d.verdict and again.runs[0].text == d.runs[0].text
    # A plain-text record has no case: said, and the button is off.
    p.channel.value = "math"
    p.examples.value = 4  # a prompt/completion pair: trained as raw text, diagnosed through the template
    assert p.case.expected == " 4" and "trained as raw text" in p.case_view.value
    p.examples.value = 5
    assert p.case is None and p.diagnose_button.disabled and "plain-text record" in p.case_view.value


def test_examples_without_traces_and_an_iterable_dataset(pair):
    dl = probe.data_loss(pair, RECORDS[:3], channel="source", traces=False)
    lab = TrainingLab(None, data_loss=dl, background=False)
    p = lab.panel
    p.channel.value = "geo"
    assert "traces=True" in p.view.value and p.token.options == () and p.token_view.value == ""
    assert p.diagnose_button.disabled and "pass dataset=" in p.case_view.value
    wrong = TrainingLab(None, data_loss=dl, dataset=[RECORDS[3]] + RECORDS[1:3], background=False).panel
    wrong.channel.value = "geo"  # line 1 is now a text record: not the example that was scored
    assert wrong.case is None and "has the file changed" in wrong.case_view.value
    lab = TrainingLab(None, data_loss=dl, dataset=RECORDS[:3], background=False)
    p = lab.panel
    p.channel.value = "geo"
    assert p.case.expected == f"Paris {EVIL}" and "pair=(base, tuned)" in p.case_view.value
    p.diagnose_button.click()
    assert "no models" in p.status.value and p.diagnosis is None


def test_the_case_goes_to_a_diagnose_lab(data, pair, tmp_path):
    path, dl = data
    dlab = DiagnoseLab(*pair, book=tmp_path / "book", background=False)
    lab = TrainingLab(None, data_loss=dl, lab=dlab, background=False)
    p = lab.panel
    p.channel.value = "geo"
    p.diagnose_button.click()
    assert dlab.prompt.value == "What is the capital of France?" and dlab.expected.value == f"Paris {EVIL}"
    assert dlab.runner.error is None and dlab.diagnosis is not None and dlab.diagnosis.expected == f"Paris {EVIL}"
    assert "sent to the DiagnoseLab" in p.status.value
    p.channel.value = EVIL  # system + user: more than DiagnoseLab's one prompt box
    dlab.diagnosis = None
    p.diagnose_button.click()
    assert "several messages" in p.status.value and dlab.diagnosis is None


def test_training_lab_with_a_log_and_a_data_loss(data):
    from pathlib import Path

    _, dl = data
    log = Path(__file__).resolve().parent.parent / "train" / "fixtures" / "trainer_log.jsonl"
    lab = TrainingLab(log, data_loss=dl, background=False)
    assert lab.panel is not None and lab.panel.widget in lab.data_box.children and len(lab.chart.data) > 0
    with pytest.raises(ValueError, match="needs a training log"):
        TrainingLab()
