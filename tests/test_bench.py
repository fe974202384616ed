"""The benchmark runs, its numbers agree, and its report says pass/fail: tiny sizes, seconds.

Peers' virtual environments are not needed: probe's runner and the plain transformers
recipes run in this process (``in_process=True``); minicons and inseq are left out.
"""

import math

import pytest
import torch

import bench.__main__ as bench_main
from bench import table

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


@pytest.mark.parametrize("w", ["W1", "W2", "W3", "W5"])
def test_probe_and_its_limit_are_timed_in_one_process(out, w):
    p, lim = probe_row(out, w), limit_row(out, w)
    assert "error" not in p and "error" not in lim
    assert p["median_s"] > 0 and lim["median_s"] > 0 and p["runs"] == 1
    assert math.isclose(p["ratio"], p["median_s"] / lim["median_s"])
    assert p["peak_mib"] >= 0 and lim["peak_mib"] >= 0
    assert set(p["fields"]) == {"logprob", "rank", "entropy", "top-5"}


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
                  "## W3: diagnose 2 cases", "## W5: one", "## Targets"):
        assert title in text
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
