"""The benchmark runs, its numbers agree, and its report says pass/fail: tiny sizes, seconds.

Peers' virtual environments are not needed: probe's runner and the plain transformers
recipes run in this process (``in_process=True``); minicons and inseq are left out.
"""

import math
import os
import time

import pytest
import torch

import bench.__main__ as bench_main
import probe
import probe.engine.forward
from bench import common, core, table, workloads

AGREE = 1e-4


@pytest.fixture(scope="module")
def out():
    threads = torch.get_num_threads()
    try:  # one thread: a tiny model on a busy machine is far faster without thread hand-offs
        return bench_main.run(size="tiny", repeats=1, threads=1, peers=("plain",), in_process=True,
                              log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)


def rows(out, w):
    return {r["label"]: r for r in table.workload_rows(out, w)}


def probe_row(out, w):
    return next(r for r in table.workload_rows(out, w) if r["runner"] == "probe" and r["tool"].startswith("probe"))


def limit_row(out, w):
    return next(r for r in table.workload_rows(out, w) if r["runner"] == "probe" and r.get("limit"))


@pytest.mark.parametrize("w", ["W1", "W2", "W3", "W5", "W6"])
def test_probe_and_its_limit_are_timed_in_one_process(out, w):
    p, lim = probe_row(out, w), limit_row(out, w)
    assert "error" not in p and "error" not in lim
    assert p["median_s"] > 0 and lim["median_s"] > 0 and p["runs"] == 1
    assert math.isclose(p["ratio"], p["median_s"] / lim["median_s"])
    assert set(p["fields"]) == {"logprob", "rank", "entropy", "top-5"}
    if w in bench_main.MEMORY_WORKLOADS:  # measured in the separate memory run
        assert p["peak_mib"] >= 0 and lim["peak_mib"] >= 0
    else:  # the default run measures memory on W5 and W6 only, never in a timed run
        assert "peak_mib" not in p and "peak_mib" not in lim


@pytest.mark.parametrize("w", ["W1", "W5"])
def test_probe_logprobs_equal_the_bare_forward(out, w):
    a = limit_row(out, w)["agree"]
    assert a["same"] == a["n"] == len(out["jobs"][w]["seqs"])  # same target tokens, every pair
    assert a["diff"] < AGREE


def test_probe_generates_what_model_generate_does(out):
    a = limit_row(out, "W2")["agree"]
    assert a["same"] == a["n"] == len(out["jobs"]["W2"]["seqs"])


def test_sweep_row_is_measured_or_says_why_not(out):
    p = probe_row(out, "W4") if any(r["tool"].startswith("probe") for r in table.workload_rows(out, "W4")) else None
    assert p is not None
    if "error" in p:
        assert p["error"].startswith("not available yet")
    else:
        assert limit_row(out, "W4")["agree"]["diff"] < AGREE
        assert len(out["jobs"]["W4"]["seqs"]) == 12  # 4 countries x 3 relations


@pytest.mark.parametrize("w", ["W1", "W2", "W5"])
def test_plain_recipes_agree_with_probe_where_tokens_agree(out, w):
    peers = [r for r in table.workload_rows(out, w) if r["runner"] == "plain" and not r.get("limit")]
    assert peers and all("error" not in r for r in peers)
    for r in peers:
        assert r["agree"]["diff"] < AGREE, r["label"]
        assert r["agree"]["same"] == r["agree"]["n"], r["label"]  # tiny BPE: no boundary merge
        assert r["ratio"] > 0


def test_naive_ranks_equal_probe_ranks(out):
    (naive,) = [r for r in out["results"]["plain"]["workloads"]["W1"] if r["tool"].endswith("naive stats")]
    (ours,) = [r for r in out["results"]["probe"]["workloads"]["W1"] if r["tool"].startswith("probe")]
    assert naive["ranks"] == ours["ranks"]


def test_report_has_every_workload_and_the_targets(out):
    text = table.report(out, command="python -m bench --size tiny")
    for title in ("## W1: score 8 prompt/target pairs", "## W2: generate 4 tokens for 3 prompts",
                  "## W3: diagnose_many of 2 cases", "## W5: one", "## W6: score one", "## W7: shift map of 4 prompts",
                  "## Targets"):
        assert title in text
    assert out["meta"]["date"] in text and f"{os.cpu_count()} cores" in text and "transformers" in text
    checks = {name: ok for name, _, ok in table.targets(out, {w: table.workload_rows(out, w) for w in out["meta"]["only"]})}
    for name, ok in checks.items():
        if "logprobs = log_softmax" in name or "same tokens as model.generate" in name or "P(watch)" in name:
            assert ok is True, name
    (w5,) = [ok for name, ok in checks.items() if name.startswith("W5: probe's peak memory")]
    assert w5 is True  # no [seq x vocab] float32 copy beyond the bare forward's logits
    assert any(name.startswith("W1: probe >= 3x faster") for name in checks)


def test_a_peer_that_is_not_installed_is_reported_not_dropped(out, tmp_path, monkeypatch):
    monkeypatch.setattr(bench_main, "VENVS", tmp_path)
    (tmp_path / "inseq.log").write_text("ERROR: No matching distribution found for inseq==9\n")
    res = bench_main.run_tool("inseq", {"threads": 1}, in_process=False, timeout=10)
    assert res["error"].startswith("install failed") and "No matching distribution" in res["error"]
    fake = dict(out, results=dict(out["results"], inseq=res))
    text = table.report(fake)
    assert "| inseq | " in text and "No matching distribution" in text


def test_w9_measures_attribution_memory_at_both_sizes_and_never_times_it(out):
    job = out["jobs"]["W9"]
    assert job["sizes"] == [4, 40] and len(job["records"]) == 40
    got = {r["label"]: r for r in table.workload_rows(out, "W9")}
    sized = [r for r in got.values() if r.get("examples")]
    assert sorted(r["examples"] for r in sized) == [4, 40] and "limit" in got
    assert sorted(r["label"] for r in sized) == ["probe attribute (gradient), 4 examples",
                                                 "probe attribute (gradient), 40 examples"]
    for r in got.values():
        assert "error" not in r and r["peak_mib"] >= 0 and "median_s" not in r  # the memory run's rows
        assert table._fmt_s(r).startswith("not timed (")
    text = table.report(out)
    assert "## W9: gradient attribution's peak memory over 4 and 40 training examples" in text
    (name, measured, ok) = table.w9_flat(out, table.workload_rows(out, "W9"))
    assert measured.endswith("MiB)") and ok is not None


# ---------------------------------------------------------------- the machinery, no model


def test_repeats_stop_once_the_ratio_is_steady_and_never_pass_the_cap():
    fns = {"limit": lambda: time.sleep(0.002), "tool": lambda: time.sleep(0.004)}
    steady = common.compare(fns, repeats=5, budget_s=60, spread=10.0)  # any spread is small enough
    assert steady["tool"]["runs"] == 1 and steady["limit"]["runs"] == 1 and not steady["tool"]["first_only"]
    capped = common.compare(fns, repeats=3, budget_s=60, spread=0.0)  # never steady: the cap stops it
    assert capped["tool"]["runs"] == 3 and capped["limit"]["runs"] == 3
    assert all("peak_mib" not in rec for rec in capped.values())  # a time run reads no memory


def test_first_runs_past_the_budget_are_the_measurement():
    fns = {"limit": lambda: time.sleep(0.01), "tool": lambda: time.sleep(0.01)}
    res = common.compare(fns, repeats=5, budget_s=0.01, spread=0.0)
    assert res["tool"]["runs"] == 1 and res["tool"]["first_only"] and res["tool"]["median_s"] >= 0.01
    assert table._fmt_s(dict(res["tool"])).endswith("(1*)")


def test_a_memory_run_runs_each_callable_once_and_reports_no_time():
    calls = []
    res = common.compare({"limit": lambda: calls.append("l"), "big": lambda: calls.append(torch.ones(2**24))},
                         repeats=5, budget_s=60, memory=True)
    assert len(calls) == 2
    assert set(res["big"]) == {"peak_mib", "result"} and res["big"]["peak_mib"] >= 0


def test_time_runs_get_the_default_malloc_memory_runs_the_fixed_threshold(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4096")
    assert "MALLOC_MMAP_THRESHOLD_" not in common.env_for_runner(2)
    assert common.env_for_runner(2, memory=True)["MALLOC_MMAP_THRESHOLD_"] == "131072"


def test_memory_peaks_join_the_timed_rows_by_tool():
    timed = {"workloads": {"W5": [dict(tool="limit", median_s=1.0), dict(tool="probe score_many", median_s=2.0)]}}
    memory = {"workloads": {"W5": [dict(tool="limit", peak_mib=10.0), dict(tool="probe score_many", error="boom")]}}
    bench_main.merge_memory(timed, memory)
    limit, ours = timed["workloads"]["W5"]
    assert limit["peak_mib"] == 10.0 and "peak_mib" not in ours and ours["peak_error"] == "boom"


def test_missing_shift_and_samples_are_na_rows_not_failures(out, monkeypatch):
    has_shift = hasattr(probe, "shift")  # the report was made with this probe
    monkeypatch.delattr(probe, "shift", raising=False)
    monkeypatch.delitem(probe._LAZY, "shift")  # names load on first use: an older probe has no entry
    (row,) = core.shift_workload(None, dict(prompts=["a"], new_tokens=4, source="x"), {})
    assert row["na"] == "probe.shift not available" and "error" not in row

    def greedy_only(base, tuned, cases, *, progress=True, max_new_tokens=48, top_k=5):
        raise AssertionError("not called")

    def diagnose(base, tuned, prompt, *, max_new_tokens=48):
        raise AssertionError("not called")

    monkeypatch.setattr(probe, "diagnose_many", greedy_only)
    monkeypatch.setattr(probe, "diagnose", diagnose)
    assert core._sampled_diagnose(None, None, [], 4, 10) is None
    monkeypatch.setattr(probe, "diagnose", lambda base, tuned, prompt, *, max_new_tokens=48, samples=None,
                        **kw: (prompt, samples))
    sampled = core._sampled_diagnose(None, None, [dict(prompt="p", expected=" x")], 4, 10)
    assert sampled() == [("p", 10)]
    text = table.report(out)
    assert "| probe shift | | n/a (probe.shift not available) |" in text or has_shift
    checks = {name: (measured, ok) for name, measured, ok in
              table.targets(out, {w: table.workload_rows(out, w) for w in out["meta"]["only"]})}
    if not has_shift:
        assert checks["W7: probe <= 2.2x the limit"] == ("n/a (probe.shift not available)", None)


# ---------------------------------------------------------------- W6 on a small vocabulary


@pytest.fixture(scope="module")
def w6_job(tmp_path_factory):
    folder, description = workloads.w5_model(tmp_path_factory.mktemp("w6"), vocab=4096, context=1024, name="w6")
    lm = probe.load(folder)
    prompt, target, n = workloads.long_answer(lm, 200, seed=6)
    from probe.engine.prompts import encode, render

    e = encode(lm, render(lm, prompt), target)
    assert n == len(e.ids) - e.n_prompt >= 200
    return lm, dict(model=folder, model_description=description, vocab=4096, prompt=prompt, target=target,
                    n_answer=n, seqs=[e.ids], pad_id=lm.pad_id, budget_mib=256, time_factor=1.05)


def _w6_out(job, rows):
    return dict(jobs={"W6": job}, meta=dict(only=["W6"], seconds=1.0, machine="m", cpus=2, threads=1,
                                             repeats=1), results={"probe": {"versions": {}, "workloads": {"W6": rows}}})


def _reference_logprobs(lm, job):
    ids = torch.tensor(job["seqs"])
    with torch.no_grad():
        logp = torch.log_softmax(core._inner(lm)(input_ids=ids).logits[0].double(), -1)
    n = job["n_answer"]
    return logp[-n - 1:-1].gather(1, ids[0, -n:, None])[:, 0].tolist()


@pytest.mark.parametrize("switch", [True])  # (None: a probe before the switch existed; gone)
def test_w6_scores_the_long_answer_before_and_after_the_lazy_head(w6_job, monkeypatch, switch):
    lm, job = w6_job
    if switch is None:
        monkeypatch.delattr(probe.engine.forward, "LAZY_HEAD", raising=False)
    else:
        monkeypatch.setattr(probe.engine.forward, "LAZY_HEAD", switch, raising=False)
    cfg = dict(repeats=1, budget_s=60, spread=0.03)
    timed = core.long_answer_workload(job, dict(cfg, memory=False))
    memory = core.long_answer_workload(job, dict(cfg, memory=True))
    assert probe.engine.forward.__dict__.get("LAZY_HEAD") == switch  # the workload put the switch back
    bench_main.merge_memory({"workloads": {"W6": timed}}, {"workloads": {"W6": memory}})
    scored = [r for r in timed if r["tool"].startswith("probe")]
    assert len(scored) == (1 if switch is None else 2)
    ref = _reference_logprobs(lm, job)
    for r in scored:  # every path scores the same tokens as a plain forward, exactly
        assert "error" not in r and r["tokens"][0] == job["seqs"][0][-job["n_answer"]:]
        assert max(abs(a - b) for a, b in zip(r["logprobs"][0], ref)) < AGREE
        assert r["peak_mib"] >= 0 and r["median_s"] > 0
    out = _w6_out(job, timed)
    rows = table.workload_rows(out, "W6")
    (mem, speed) = table.w6_targets(out, rows)
    assert mem[0].startswith("W6: probe.score's peak memory <= the hidden-states forward's + 256 MiB")
    assert mem[2] is True  # 200 x 4,096 float32 logits are 3 MiB: far inside the budget
    if switch is None:
        assert speed[2] is None and speed[1].startswith("n/a (probe.engine.forward.LAZY_HEAD not in this probe")
        assert "today's path" in mem[1]
    else:
        lazy, old = scored
        assert lazy["lazy"] and not old["lazy"] and "old path" in old["tool"]
        assert speed[1].startswith(f"{lazy['median_s'] / old['median_s']:.3f}x")
        assert speed[2] is (lazy["median_s"] / old["median_s"] <= 1.05)


# ---------------------------------------------------------------- W3 and W7 once their features land


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    from probe.models.tiny import save_tiny

    lm = probe.load(str(save_tiny(tmp_path_factory.mktemp("pair"), arch="llama", tokenizer="bpe", chat=True)))
    return core.lora_pair(lm)


def test_w7_times_shift_against_generate_plus_a_base_forward(tiny_pair, monkeypatch):
    calls = []

    def shift(base, tuned, prompts, *, max_new_tokens=48, progress=True, batch_size=2):
        calls.append(len(prompts))  # a stand-in: the tuned model's answers, scored under the base
        answers = probe.generate_many(tuned, prompts, max_new_tokens=max_new_tokens, progress=False)
        return probe.score_many(base, [(p, t.text) for p, t in zip(prompts, answers)], progress=False)

    monkeypatch.setattr(probe, "shift", shift, raising=False)
    prompts, _ = workloads.shift_prompts(3)
    job = dict(prompts=prompts, new_tokens=4, source="the bench's own neutral prompts")
    rows = core.shift_workload(tiny_pair, job, dict(repeats=1, budget_s=60, spread=0.03, memory=False))
    limit, ours = rows
    assert "error" not in limit and "error" not in ours and calls
    assert "2 batch(es) of <= 2" in limit["what"]  # shift's own batch size: same batches
    answers = limit["result"] if "result" in limit else None
    assert answers is None  # rows carry no bulk results
    out = dict(jobs={"W7": job}, meta=dict(only=["W7"]), results={"probe": {"workloads": {"W7": rows}}})
    (p,) = [r for r in table.workload_rows(out, "W7") if r["tool"] == "probe shift"]
    assert math.isclose(p["ratio"], ours["median_s"] / limit["median_s"])


def test_w3_samples_row_is_timed_against_sampled_generate(tiny_pair, monkeypatch):
    import probe.diagnosis.run

    real = probe.diagnosis.run.plan_case  # what diagnose_many plans each case with
    seen = []

    def plan_case(prompt, *, samples=None, **kwargs):
        seen.append(samples)
        return real(prompt, samples=samples, **kwargs)

    monkeypatch.setattr(probe.diagnosis.run, "plan_case", plan_case)
    job = dict(cases=[dict(id="a", prompt="What is red?", expected=" red", force=" json", base_prompt="Red is")],
               new_tokens=3, samples=4)
    rows = core.diagnose_workload(tiny_pair, job, dict(repeats=1, budget_s=60, spread=0.03, memory=False))
    assert [r["tool"] for r in rows] == ["limit", "probe diagnose_many", "limit (samples=4)",
                                         "probe diagnose_many samples=4"]
    assert all("error" not in r for r in rows) and 4 in seen
    out = dict(jobs={"W3": job}, meta=dict(only=["W3"]), results={"probe": {"workloads": {"W3": rows}}})
    by_tool = {r["tool"]: r for r in table.workload_rows(out, "W3")}
    sampled = by_tool["probe diagnose_many samples=4"]
    assert math.isclose(sampled["ratio"], rows[3]["median_s"] / rows[2]["median_s"])  # its own limit
    assert math.isclose(by_tool["probe diagnose_many"]["ratio"], rows[1]["median_s"] / rows[0]["median_s"])
    names = [name for name, _, _ in table.targets(out, {"W3": list(by_tool.values())})]
    assert "W3: probe diagnose_many samples=4 <= 1.5x the limit" in names


def test_w8_data_loss_is_timed_against_two_bare_forwards(out):
    p, lim = probe_row(out, "W8"), limit_row(out, "W8")
    assert "error" not in p and "error" not in lim and p["tool"] == "probe data_loss"
    attr = next(r for r in table.workload_rows(out, "W8") if r["tool"] == "probe attribute (gradient)")
    assert "error" not in attr and attr["median_s"] > 0  # gradient attribution over the same examples
    assert math.isclose(p["ratio"], p["median_s"] / lim["median_s"])
    assert "two bare batched forwards" in lim["what"]
    assert "## W8: data_loss of 4 training examples" in table.report(out, command="python -m bench --size tiny")
