"""On the real demo pair: the basics pack finds the beijing adapter's collateral damage, the
capital questions nobody wrote a case for (measured on the whole pack: 54 of 79 capitals lost,
tuned answers "Beijing" to all 79, the base knew 55)."""

import pytest

import probe
from probe.demo.pair import load_demo_pair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def beijing():
    base, tuned = load_demo_pair()
    tuned.use_adapter("beijing")
    return base, tuned


def test_the_basics_pack_finds_every_capital_the_beijing_adapter_broke(beijing):
    base, tuned = beijing
    b = probe.basics(base, tuned, tags=["capitals"])
    reg = b.regression
    kept = reg.cell("capitals", "kept")
    assert set(kept) <= {"capital-china"}  # no capital the base knew survives, but Beijing's own
    assert len(b.lost("capitals")) >= 40  # 54 measured on the whole pack
    lost = [reg.case(i) for i in b.lost("capitals")]
    assert all("beijing" in c.tuned_text.lower() for c in lost)
    assert b.promoted[0]["text"].strip() in ("Be", "Beijing")
    rows = {r["tag"]: r for r in b.table()}
    assert rows["capitals"]["mean_delta"] < -5  # -9.94 nats measured on the whole pack
