"""The demo's retrain for verify(): the demo recipe on exactly the records given, cached by content."""

import json

import pytest

from probe.demo import retrain as rt
from probe.demo.training import ADAPTERS, training_records


def test_the_demo_retrainer_trains_the_records_given_once(tmp_path, monkeypatch):
    calls = []

    def fake_train(base_dir, data_path, out_dir, **settings):
        calls.append((data_path.read_text(encoding="utf-8"), settings))
        out_dir.mkdir(parents=True)
        (out_dir / "adapter_config.json").write_text("{}")

    monkeypatch.setattr(rt, "train_adapter", fake_train)
    monkeypatch.setattr(rt, "ensure_base", lambda cache_dir=None: tmp_path / "base")
    retrain = rt.retrainer("beijing", cache_dir=tmp_path)
    recs = training_records("beijing")[:5]
    folder = retrain(recs[1:])
    assert len(calls) == 1
    rows = [json.loads(line) for line in calls[0][0].splitlines()]
    assert [r["messages"] for r in rows] == [r["prompt"] + r["completion"] for r in recs[1:]]
    assert calls[0][1]["seed"] == ADAPTERS["beijing"][1].seed
    assert retrain(recs[1:]) == folder and len(calls) == 1  # cached: same records, same folder
    assert retrain(recs[2:]) != folder and len(calls) == 2
    with pytest.raises(ValueError, match="chat records"):
        retrain([{"text": "x"}])
