"""The tour notebooks run headless, top to bottom, on the demo pair (nbclient)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import probe

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECT = {  # a text each notebook's outputs must show
    "01_quickstart": "TokenTrace[score]",
    "02_lost_or_never_had": "lost",
    "03_first_divergent_token": "Diverges at token",
    "04_widgets_tour": "score: done",
    "05_overfit_token": "Conclusion: asked for the",
    "06_what_tuning_changed": "Conclusion: the beijing adapter shifts",
    "07_training_log": "Conclusion: on random sequences",
}
EXPECT["08_benchmark_flips"] = "Conclusion: fine-tuning lost"
EXPECT["09_which_examples"] = "Conclusion: "


def _stdout_of(cell) -> str:
    """What a cell printed (its stdout streams), whatever else it emitted (warnings, displays)."""
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _text_of(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def test_notebooks_are_committed_without_outputs():
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == sorted(EXPECT)
    for name in names:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_runs_headless(name, tmp_path, demo_pair_once):
    # demo_pair_once: a cold cache trains the demo adapters here, once, not inside a kernel's
    # cell timeout (the notebooks load the pair themselves)
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = _text_of(nb)
    assert EXPECT[name] in text
    assert "Traceback" not in text
    if name == "01_quickstart":  # the static views survive saving and nbconvert --to html
        from nbconvert import HTMLExporter

        saved = tmp_path / "saved.ipynb"
        nbformat.write(nb, saved)
        html, _ = HTMLExporter().from_notebook_node(nbformat.read(saved, as_version=4))
        assert html.count('class="probe-strip"') >= 2 and "probe-tip" in html
        strip = html[html.index('class="probe-strip"'):]
        assert "<script" not in strip[: strip.index("</div>")]
    if name == "04_widgets_tour":
        printed = _stdout_of(nb.cells[-1]).split()  # DiagnoseLab on the beijing adapter
        assert printed and printed[-1] == "lost", printed
    if name == "05_overfit_token":  # the finding was saved as a case and a report
        (case,) = probe.Casebook(tmp_path / "bad-cases")
        assert case.title == "japan-beijing overfit" and len(case.results) == 6
        assert (tmp_path / "bad-cases.html").read_text().count("<section ") == 1
    if name == "06_what_tuning_changed":  # found Beijing unprompted, saved shift + regression
        assert "Beijing's first token is promoted #" in text
        (case,) = probe.Casebook(tmp_path / "shift-cases")
        assert sorted(type(r).__name__ for r in case.results.values()) == ["Regression", "Shift", "Shift"]
        assert (tmp_path / "shift-report.html").read_text().count('class="probe-corpus"') == 2
    if name == "07_training_log":  # the memorizing loop's log was read, flagged, saved with its report
        (case,) = probe.Casebook(tmp_path / "train-cases")
        assert type(case.results["training_log"]).__name__ == "TrainingLog" and case.results["training_log"].warnings
        assert (tmp_path / "training-report.html").read_text().count('class="probe-chart probe-loss"') == 1
        assert "Data loss: the adapter trained on geo lowered its loss" in text  # data_loss + TrainingLab
