"""DiagnoseLab: enter a case, see the four runs and the verdict.

    >>> lab = DiagnoseLab(base, tuned)
    >>> lab.prompt.value, lab.expected.value = "What is the capital of France?", "Paris"
    >>> lab.run_button.click()
    >>> lab.runner.wait()

With ``dataset=`` (the SFT records or file the tuned model was fine-tuned on) the "which
examples?" control under the card ranks them for the case (:func:`probe.attribute`; the
diagnosed case, or the prompt and expected answer typed in); without it the control is disabled
and says why.
"""

from __future__ import annotations

from ..cases.case import Case
from ..cases.casebook import open_casebook
from ..diagnosis.checks import answer, contains, json_valid, regex
from ..diagnosis.run import diagnose
from ..render.card import diagnosis_html
from .attribution_panel import AttributionPanel
from .common import html_view, Runner, _ipywidgets, message
from .explorer import split_tags, typed

NO_DATA = ("no SFT data: pass DiagnoseLab(base, tuned, dataset=...) the JSONL file or records the tuned "
           "model was fine-tuned on")
CHECKS = ("answer expected", "contains expected exactly", "json_valid", "regex")


def make_check(kind: str, expected: str, pattern: str):
    if kind in ("answer expected", "contains expected exactly"):
        if not expected:
            raise ValueError(f"{kind!r} needs an expected answer")
        return answer(expected) if kind == "answer expected" else contains(expected)
    if kind == "json_valid":
        return json_valid()
    if kind == "regex":
        return regex(pattern)
    raise ValueError(f"unknown check {kind!r}")


class DiagnoseLab:
    """Lost, never had, or not triggered, for one case typed in by hand."""

    def __init__(self, base, tuned, *, book="bad-cases", dataset=None, channel=None, background: bool = True):
        w = _ipywidgets()
        self.base, self.tuned, self.dataset = base, tuned, dataset
        self.diagnosis = None
        self.book = open_casebook(book)
        self.prompt = w.Textarea(description="prompt", layout={"width": "100%"})
        self.expected = w.Text(description="expected")
        self.check = w.Dropdown(options=CHECKS, value=CHECKS[0], description="check")
        self.pattern = w.Text(description="regex")
        self.force = w.Text(description="force", placeholder='e.g. ```json\\n')
        self.base_prompt = w.Text(description="base cont.", placeholder="e.g. The capital of France is")
        adapters = list(getattr(tuned, "adapters", []) or [])
        self.adapter = w.Dropdown(options=adapters, description="adapter") if len(adapters) > 1 else None
        self.max_new_tokens = w.IntSlider(value=32, min=1, max=256, description="new tokens")
        self.samples = w.IntSlider(value=0, min=0, max=50, description="samples")  # 0: greedy only
        self.temperature = w.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1, description="temperature")
        self.seed = w.IntText(value=0, description="seed")
        self.run_button = w.Button(description="Diagnose", button_style="primary")
        self.save_button = w.Button(description="save as bad case", disabled=True)
        self.note = w.Text(description="note", placeholder="why this case is bad (saved with it)")
        self.tags = w.Text(description="tags", placeholder="comma-separated")
        self.save_button.on_click(lambda _: self.save())
        self.status = html_view(message("info", "Enter a case and press Diagnose."))
        self.card = html_view()
        self.runner = Runner(self.status, [self.run_button], background)
        self.run_button.on_click(lambda _: self.run())
        rows = [self.prompt, w.HBox([self.expected, self.check, self.pattern]),
                w.HBox([self.force, self.base_prompt]), self.max_new_tokens,
                w.HBox([self.samples, self.temperature, self.seed])]
        if self.adapter is not None:
            rows.append(self.adapter)
        self.attribution = AttributionPanel(self._attribution_inputs, channel=channel, background=background,
                                            reason=None if dataset is not None else NO_DATA)
        self.runner.buttons.append(self.attribution.button)  # one job at a time on the models
        self.attribution.runner.buttons.append(self.run_button)
        self.widget = w.VBox(rows + [w.HBox([self.run_button, self.save_button, self.note, self.tags]),
                                     self.status, self.card, self.attribution.widget])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _attribution_inputs(self):
        """(pair, case, dataset) for "which examples?": the diagnosis when it is of the case in
        the fields, else the fields' prompt and expected answer."""
        prompt, expected = self.prompt.value, self.expected.value
        if not prompt or not expected:
            raise ValueError("enter a prompt and an expected answer (or diagnose a case) first")
        d = self.diagnosis
        case = d if d is not None and d.prompt == prompt and d.expected == expected else (prompt, expected)
        if self.adapter is not None:
            self.tuned.use_adapter(self.adapter.value)
        return (self.base, self.tuned), case, self.dataset

    def run(self) -> None:
        expected = self.expected.value or None
        force = typed(self.force.value) or None
        base_prompt = self.base_prompt.value or None
        kind, pattern, prompt, n = self.check.value, self.pattern.value, self.prompt.value, self.max_new_tokens.value
        adapter = self.adapter.value if self.adapter is not None else None
        sampling = {"samples": self.samples.value or None, "temperature": self.temperature.value,
                    "seed": self.seed.value}

        def job():
            check = make_check(kind, expected or "", pattern)
            if adapter is not None:
                self.tuned.use_adapter(adapter)
            self.diagnosis = diagnose(self.base, self.tuned, prompt, check=check, expected=expected,
                                      force=force, base_prompt=base_prompt, max_new_tokens=n, **sampling)
            self.card.value = diagnosis_html(self.diagnosis)
            self.save_button.disabled = False

        self.runner.start("diagnose", job)

    def save(self) -> Case:
        """Save the diagnosis (with both models' identities) as a bad case in the casebook."""
        if self.diagnosis is None:
            raise ValueError("nothing to save yet: diagnose first")
        case = Case.from_result(self.diagnosis, models=(self.base, self.tuned), note=self.note.value,
                                tags=split_tags(self.tags.value))
        self.book.add(case)
        self.status.value = message("ok", f"saved case {case.id} in {self.book.folder}")
        return case
