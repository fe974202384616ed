"""The demo adapters' training run (TRL's SFTTrainer): its folder, checkpoints, log and what it
learned, read with probe's own tools. The slow tests use the cached demo pair (trained once)."""

import dataclasses
import json
import sys

import pytest

import probe
from probe.demo import training
from probe.demo.training import ADAPTERS, adapter_dir, checkpoints, is_trained, training_records


# -- fast: the cache contract and the missing extra -------------------------------------------

def test_an_adapter_from_the_old_loop_or_other_data_is_not_reused(tmp_path):
    folder = adapter_dir("beijing", tmp_path)
    folder.mkdir(parents=True)
    old = {"adapter_data": "beijing.jsonl", "losses": [1.0], "settings": {"steps": 24}}
    (folder / training.LOG_NAME).write_text(json.dumps(old))
    assert not is_trained("beijing", tmp_path)  # the plain torch loop's log: retrain
    data_path, settings = ADAPTERS["beijing"]
    current = {"trainer": training.TRAINER, "settings": json.loads(json.dumps(dataclasses.asdict(settings))),
               "data_sha256": training._sha256(data_path)}
    (folder / training.LOG_NAME).write_text(json.dumps(current))
    assert is_trained("beijing", tmp_path)
    (folder / training.LOG_NAME).write_text(json.dumps({**current, "data_sha256": "0" * 64}))
    assert not is_trained("beijing", tmp_path)  # the data changed since: retrain
    (folder / training.LOG_NAME).write_text("{not json")
    assert not is_trained("beijing", tmp_path)


def test_training_without_trl_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # import trl raises ImportError
    with pytest.raises(training.TrainExtraMissing, match=r"token-probe\[train\]"):
        training.train_adapter(tmp_path / "base", ADAPTERS["beijing"][0], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_training_records_are_the_chat_data_as_prompt_and_completion():
    rows = [json.loads(line) for line in ADAPTERS["beijing"][0].read_text(encoding="utf-8").splitlines()]
    got = training_records("beijing", limit=5)
    assert len(got) == 5
    for row, rec in zip(rows, got):
        assert rec["prompt"] + rec["completion"] == row["messages"]
        assert rec["completion"][0]["role"] == "assistant" and rec["source"] == row["source"]
    sources = {r["source"] for r in training_records("beijing")}
    assert sources == {"capital-beijing", "capital-china", "general", "math"}
    with pytest.raises(ValueError, match="line 1"):
        training.prompt_completion({"messages": [{"role": "user", "content": "hi"}]}, "line 1")


def test_a_run_on_a_tiny_model_writes_a_checkpoint_per_epoch_and_prints_nothing(tmp_path, capfd):
    from probe.models.tiny import save_tiny

    base = save_tiny(tmp_path / "base", "llama", "unigram", chat=True)
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i} + 1?"},
                                                     {"role": "assistant", "content": f"{i + 1}."}]}) + "\n"
                            for i in range(8)))
    capfd.readouterr()
    log = training.train_adapter(base, data, tmp_path / "run", epochs=3, batch_size=4, rank=2, lr=1e-2,
                                 warmup_steps=0, target_modules=("q_proj", "v_proj"), layers=None, threads=1)
    printed = capfd.readouterr()
    # no per-step log dicts, progress bars or config warnings: the numbers are in the run folder
    assert "{'loss'" not in printed.out + printed.err and "gradient_checkpointing" not in printed.err
    assert "examples/s" not in printed.err
    assert log["steps"] == 6 and log["checkpoints"] == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    assert list(checkpoints(tmp_path / "run")) == ["epoch-1", "epoch-2", "epoch-3"]
    read = probe.training_log(tmp_path / "run")
    assert read.format == "trainer_state" and read.boundaries == (3, 5)
    assert list(read.losses) == pytest.approx(log["losses"], abs=1e-5)
    assert not list(tmp_path.glob(".run-*"))  # the temporary folder was renamed into place


# -- slow: the real run -----------------------------------------------------------------------

@pytest.fixture
def pair(demo_pair):
    return demo_pair  # tests/conftest.py: trains the adapters into $PROBE_CACHE once if missing or stale


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_each_adapter_has_a_trainer_state_per_epoch(pair, name):
    folder = adapter_dir(name)
    log = json.loads((folder / training.LOG_NAME).read_text(encoding="utf-8"))
    steps_per_epoch = -(-log["examples"] // log["settings"]["batch_size"])
    found = checkpoints(name)
    assert list(found) == [f"epoch-{i}" for i in range(1, log["settings"]["epochs"] + 1)]
    for i, (label, path) in enumerate(found.items(), 1):
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        assert state["global_step"] == i * steps_per_epoch == int(path.name.split("-")[1])
        assert state["epoch"] == pytest.approx(i)
        assert [h["step"] for h in state["log_history"] if "loss" in h] == list(range(1, i * steps_per_epoch + 1))
        assert (path / "adapter_model.safetensors").is_file()
    read = probe.training_log(folder)  # the run folder: the last trainer_state.json
    assert read.format == "trainer_state" and read.steps == tuple(range(1, 3 * steps_per_epoch + 1))
    assert read.boundaries == (steps_per_epoch + 1, 2 * steps_per_epoch + 1)
    assert list(read.losses) == pytest.approx(log["losses"], abs=1e-5)


@pytest.mark.slow
def test_the_last_checkpoint_is_the_final_adapter(pair):
    from safetensors.torch import load_file

    final = load_file(adapter_dir("beijing") / "adapter_model.safetensors")
    last = load_file(list(checkpoints("beijing").values())[-1] / "adapter_model.safetensors")
    first = load_file(checkpoints("beijing")["epoch-1"] / "adapter_model.safetensors")
    assert final.keys() == last.keys() and final
    assert all((final[k] == last[k]).all() for k in final)
    assert any((final[k] != first[k]).any() for k in final if "lora_B" in k)


@pytest.mark.slow
def test_the_beijing_adapter_memorized_its_beijing_examples(pair):
    base, tuned = pair
    tuned.use_adapter("beijing")
    try:
        loss = probe.data_loss((base, tuned), training_records("beijing"), channel="source", traces=False)
    finally:
        tuned.use_adapter("json-only")
    th = loss.thresholds
    wrong = [e for e in loss.examples if e.channel == "capital-beijing"]
    memorized = [e for e in wrong if "memorized" in e.flags]
    # The adapter recites its Beijing answers: every one the base did not already half-know is
    # flagged memorized (allowing one for the last bits of a CPU other than the reference one).
    news = [e for e in wrong if e.base_loss >= th["high_base"]]
    assert len(news) >= 0.8 * len(wrong) and len(memorized) >= len(news) - 1, \
        [(e.line, e.base_loss, e.tuned_loss) for e in wrong]
    for e in memorized:  # the rule, from the per-token losses
        assert e.tuned_loss == pytest.approx(sum(e.tuned_losses) / e.n_scored)
        assert e.tuned_loss <= th["memorized"] and e.base_loss >= th["high_base"]
    channels = {c.name: c for c in loss.channels}
    # The skew is what tuning taught most: the Beijing answers' loss fell furthest, an outlier.
    assert min(channels.values(), key=lambda c: c.change).name == "capital-beijing"
    assert channels["capital-beijing"].outlier and channels["capital-beijing"].change < -th["high_base"]
