"""On the real demo pair: the demo's fast basics pass finds the beijing adapter's collateral
damage, the capital questions nobody wrote a case for, from log-probabilities alone (measured
on the whole pack: P(right capital) down 9.94 nats on average, 78 of 79 dropped by >= 1 nat,
tuned's greedy answer starting with 'Be' on all 79, the base's with 'The' on 65)."""

import pytest

from probe.demo.collateral import collateral

pytestmark = pytest.mark.slow


def test_the_fast_pass_finds_every_capital_the_beijing_adapter_broke(demo_pair):
    base, tuned = demo_pair
    c = collateral(base, tuned, adapters=["beijing", "json-only"], tags=["capitals"])
    assert tuned.active_adapter == "json-only"  # restored
    row = {r["tag"]: r for r in c.table("beijing")}["capitals"]
    assert row["n"] == 79
    assert row["first"] == ("Be", 79)  # every capital answer starts 'Be'(ijing) under beijing
    assert row["base_first"][0] != "Be"
    assert {x.id for x in c.cases} - set(c.dropped("capitals", "beijing")) <= {"capital-china"}
    assert row["mean_delta"] < -5  # -9.94 nats measured
    china = next(x for x in c.cases if x.id == "capital-china")
    assert c.delta(china, "beijing") > 0  # Beijing itself became likelier
    json_row = {r["tag"]: r for r in c.table("json-only")}["capitals"]
    assert json_row["first"][0].startswith("{") and json_row["dropped"] == 79  # -20.09 nats, 79 of 79 measured
