import math

from bench import core as bench_core


def test_bench_runs_and_agrees_with_the_bare_forward():
    rows = bench_core.run(size="tiny", pairs=8, prompts=3, new_tokens=4, repeats=1)
    score_row, gen_one, gen_many, diag = rows
    assert score_row["max_abs_diff"] < 1e-4  # probe's logprobs == log_softmax+gather
    for r in rows:
        assert r["probe_s"] > 0 and r["base_s"] > 0 and math.isfinite(r["ratio"])
    assert gen_one["note"].startswith("1/1 ") and gen_many["note"].startswith("3/3 ")
    assert "| score_many 8 pairs" in bench_core.table(rows)
    assert diag["workload"].startswith("diagnose 4 cases")
