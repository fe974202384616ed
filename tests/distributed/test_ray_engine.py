"""The Ray engine gives the local run's results, bitwise, in input order; survives a killed
worker; and fails clearly when Ray, the cluster or the pair's recipe is missing.

One local Ray cluster of 2 one-CPU workers for the module (starting Ray costs ~5 s); torch runs
one thread here and in the workers, so that the same batch gives the same bits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import probe
from probe.models.recipe import NotRebuildable, pair_recipe
from probe.models.tiny import save_tiny

CASES = [
    {"id": "a", "prompt": "What is the capital of France?", "expected": "Paris"},
    {"id": "b", "prompt": "Name a color.", "expected": "red", "force": "The color is"},
    {"id": "bad", "prompt": "Hi", "expected": "x", "adapter": "nope"},  # stays its own FailedCase
    {"id": "c", "prompt": "Count to three.", "check": {"contains": "three"}},
    {"id": "d", "prompt": "Say hello in French, please, in one word.", "expected": "Bonjour"},
    {"id": "e", "prompt": "2+2=", "expected": "4"},
]


def _die_once(marker, fn, base, tuned, batch):
    """The batch function, but the first worker to see ``marker`` deletes it and is killed."""
    try:
        os.remove(marker)
    except FileNotFoundError:
        return fn(base, tuned, batch)
    os.kill(os.getpid(), signal.SIGKILL)


class _Killer:
    """An engine wrapper whose first batch kills its worker (mid-run: other batches in flight)."""

    def __init__(self, engine, marker):
        self.engine, self.marker = engine, marker

    def map_batches(self, fn, batches, *, pair, on_batch=None):
        import functools

        return self.engine.map_batches(functools.partial(_die_once, self.marker, fn), batches,
                                       pair=pair, on_batch=on_batch)


def _pid_of_worker(base, tuned, batch):
    return [os.getpid() for _ in batch]


def _bad_batch(base, tuned, batch):
    raise ValueError(f"a bad case in batch {batch}")


def _silent_listener():
    """A local port where something accepts connections and never says a word (a stand-in for
    a dashboard port or another service that is not a Ray head); returns (port, stop)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()

    def stop():
        srv.close()
        for c in held:
            c.close()

    return srv.getsockname()[1], stop


@pytest.fixture(scope="module")
def lora_pair(tmp_path_factory):
    from builders import make_adapter

    root = tmp_path_factory.mktemp("raypair")
    folder = save_tiny(root / "base", "llama", "unigram", chat=True)
    return probe.load_pair(folder, adapter=make_adapter(folder, root / "adapter"))


@pytest.fixture(scope="module")
def engine():
    import ray  # the test extra installs it: missing, the test fails (never skips)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    eng = probe.ray_engine(workers=2, threads=1, ready_timeout=120, temp_dir=f"/tmp/rt{os.getpid()}", start_tries=3)
    yield eng
    eng.close()
    torch.set_num_threads(threads)


def _same(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(w)
        assert g.to_dict() == w.to_dict()


@pytest.mark.slow
def test_diagnose_many_on_ray_equals_local_and_survives_a_killed_worker(lora_pair, engine, tmp_path):
    base, tuned = lora_pair
    kw = dict(progress=False, max_new_tokens=6, samples=2, seed=7, batch_tokens=200)
    local = probe.diagnose_many(base, tuned, CASES, **kw)
    assert isinstance(local[2], probe.FailedCase) and local[2].field == "adapter"
    assert sum(isinstance(r, probe.Diagnosis) for r in local) == 5
    _same(probe.diagnose_many(base, tuned, CASES, engine=engine, **kw), local)

    marker = tmp_path / "die"
    marker.touch()
    before = engine.replaced
    _same(probe.diagnose_many(base, tuned, CASES, engine=_Killer(engine, str(marker)), **kw), local)
    assert not marker.exists() and engine.replaced == before + 1  # one worker died and was replaced


@pytest.mark.slow
def test_shift_and_sweep_on_ray_equal_local(lora_pair, engine):
    base, tuned = lora_pair
    prompts = [c["prompt"] for c in CASES] * 2
    local = probe.shift(base, tuned, prompts, max_new_tokens=5, batch_size=3)
    got = probe.shift(base, tuned, prompts, max_new_tokens=5, batch_size=3, engine=engine)
    assert got.to_dict() == local.to_dict()
    assert [p.prompt for p in got.prompts] == prompts
    slots = {"country": ["France", "Japan", "Peru"], "relation": ["capital", "largest city"]}
    # one model, the base side of the LoRA pair: the workers must rebuild it with the adapter off
    want = probe.sweep(base, "The {relation} of {country} is", " Paris", batch_size=2, **slots)
    have = probe.sweep(base, "The {relation} of {country} is", " Paris", batch_size=2, engine=engine, **slots)
    assert have.to_dict() == want.to_dict() and len(have.rows) == 6
    assert [r.logprob for r in want.rows] != [r.logprob for r in probe.sweep(
        tuned, "The {relation} of {country} is", " Paris", batch_size=2, **slots).rows]  # the sides differ


@pytest.mark.slow
def test_a_driver_without_weights_gives_the_same_results_and_data_loss_runs_on_ray(lora_pair, engine):
    base, tuned = lora_pair
    folder, adapter = tuned.recipe["source"], tuned.recipe["adapter"]
    light_base, light = probe.load_pair(folder, adapter=adapter, weights=False)
    assert pair_recipe(light_base, light) == pair_recipe(base, tuned)  # the workers load the weights
    kw = dict(progress=False, max_new_tokens=6, samples=2, seed=7, batch_tokens=200)
    _same(probe.diagnose_many(light_base, light, CASES, engine=engine, **kw),
          probe.diagnose_many(base, tuned, CASES, **kw))
    prompts = [c["prompt"] for c in CASES]
    assert (probe.shift(light_base, light, prompts, max_new_tokens=5, engine=engine).to_dict()
            == probe.shift(base, tuned, prompts, max_new_tokens=5).to_dict())
    slots = {"country": ["France", "Japan", "Peru"]}
    assert (probe.sweep(light_base, "The capital of {country} is", " Paris", engine=engine, **slots).to_dict()
            == probe.sweep(base, "The capital of {country} is", " Paris", **slots).to_dict())
    records = [{"messages": [{"role": "user", "content": c["prompt"]},
                             {"role": "assistant", "content": c.get("expected", "three")}],
                "source": c["id"][0]} for c in CASES] * 3
    local = probe.data_loss((base, tuned), records, channel="source", batch_size=4)
    remote = probe.data_loss((light_base, light), records, channel="source", batch_size=4, engine=engine)
    assert remote.to_dict() == local.to_dict() and len(remote) == len(records)
    assert all(e.tuned is not None for e in remote.examples)  # the traces came back too


def test_unreachable_address_fails_at_once_before_any_model_loads(monkeypatch):
    import ray  # noqa: F401  (the test extra installs it: missing, fail, never skip)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(ConnectionError, match=f"no Ray cluster at 127.0.0.1:{port}"):
        probe.ray_engine(f"127.0.0.1:{port}")


def test_without_ray_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"token-probe\[ray\]"):
        probe.ray_engine()


def test_a_pair_from_memory_cannot_be_rebuilt_and_says_how_to_fix_it(lora_pair):
    base, tuned = lora_pair
    assert pair_recipe(base, tuned)["kind"] == "adapter"
    mem = probe.load((tuned.model, tuned.tokenizer))
    with pytest.raises(NotRebuildable, match="save_pretrained"):
        pair_recipe(base, mem)


@pytest.mark.parametrize("command", ["diagnose", "shift"])
def test_cli_ray_to_a_closed_port_is_an_input_error_before_any_model_loads(command, tmp_path, capsys):
    import ray  # noqa: F401  (the test extra installs it: missing, fail, never skip)
    from probe import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"prompt": "hi", "expected": "x"}\n')
    missing = str(tmp_path / "no-such-model")  # loading it would fail with another message
    args = {"diagnose": ["--cases", str(cases), "--book", str(tmp_path / "book")],
            "shift": ["--prompts", str(cases)]}[command]
    code = cli.main([command, "--base", missing, "--tuned", missing, *args, "--ray", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1 and f"no Ray cluster at 127.0.0.1:{port}" in err and "no-such-model" not in err


WEIGHTLESS_RUNS = {  # every feature a weightless driver might be asked to run here, without an engine
    "score": lambda b, t: probe.score(t, "hi", "x"),
    "score_many": lambda b, t: probe.score_many(t, [("hi", "x"), ("hello there", "y")], progress=False),
    "generate": lambda b, t: probe.generate(t, "hi", max_new_tokens=3),
    "generate_many": lambda b, t: probe.generate_many(t, ["hi", "hello there"], max_new_tokens=3),
    "diagnose": lambda b, t: probe.diagnose(b, t, "hi", expected="x", max_new_tokens=3),
    "diagnose_many": lambda b, t: probe.diagnose_many(b, t, [{"prompt": "hi", "expected": "x"}] * 2,
                                                      progress=False, max_new_tokens=3),
    "shift": lambda b, t: probe.shift(b, t, ["hi", "hello there"], max_new_tokens=3),
    "sweep": lambda b, t: probe.sweep(t, "The {c} is", " x", c=["a", "bb"]),
    "occlusion": lambda b, t: probe.occlusion(t, "hi there", " x"),
    "data_loss": lambda b, t: probe.data_loss((b, t), [{"prompt": "hi", "completion": " x"}] * 2),
}


@pytest.mark.parametrize("run", list(WEIGHTLESS_RUNS))
def test_a_weightless_pair_run_here_raises_weights_not_loaded_naming_the_fix(run, tiny_dirs):
    """Not "unsupported family" (the support check ran the model), nor one FailedCase per case."""
    folder = tiny_dirs[("llama", "unigram", True)]
    base, tuned = probe.load_pair(folder, folder, weights=False)
    with pytest.raises(probe.WeightsNotLoaded, match=r"weights=False.*engine=probe\.ray_engine"):
        WEIGHTLESS_RUNS[run](base, tuned)


def _python(code: str, timeout: float) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter importing this tree's probe (one torch thread)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


def test_an_address_where_no_ray_head_answers_fails_within_seconds_naming_it():
    """A listener that accepts and says nothing passes a TCP check; Ray then retried for ~14
    minutes. In a subprocess, so that the old hang ends at the timeout as a failure."""
    import ray  # noqa: F401  (the test extra installs it: missing, fail, never skip)
    port, stop = _silent_listener()
    code = ("import json, time, ray, probe\n"  # imports first: a busy machine takes long over them
            "start = time.monotonic()\n"
            "try:\n"
            f"    probe.ray_engine('127.0.0.1:{port}')\n"
            "except ConnectionError as err:\n"
            "    print(json.dumps({'took': time.monotonic() - start, 'error': str(err)}))\n")
    try:
        done = _python(code, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("ray_engine hung on an address where no Ray head answers")
    finally:
        stop()
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"].startswith(f"no Ray head at 127.0.0.1:{port}") and "said nothing" in report["error"]
    assert report["took"] < 20  # the handshake waits 3 s


def test_an_answer_that_is_not_grpc_is_no_ray_head_either():
    """A Redis (or an HTTP/1 dashboard) answers the handshake with text: refused at once."""
    from probe.distributed.ray_engine import check_address

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def redis():
        conn = srv.accept()[0]
        conn.recv(64)
        conn.sendall(b"-ERR unknown command 'PRI'\r\n")
        conn.close()

    threading.Thread(target=redis, daemon=True).start()
    try:
        with pytest.raises(ConnectionError, match=rf"no Ray head at 127.0.0.1:{port}: .*not gRPC"):
            check_address(f"127.0.0.1:{port}")
    finally:
        srv.close()


FAILED_START = """
import json, sys
import ray._private.node as node

started = node.Node.start_ray_processes

def start_then_fail(self):  # the raylet and agents are up, then the start fails, as on a loaded machine
    started(self)
    raise RuntimeError("simulated: the current node timed out during startup")

node.Node.start_ray_processes = start_then_fail
import psutil  # Ray's own copy
from probe import cli

code = cli.main(["diagnose", "--base", "no-such-model", "--tuned", "no-such-model", "--cases", sys.argv[1],
                 "--book", sys.argv[2], "--ray"])
left = []
for p in psutil.Process().children(recursive=True):
    try:
        if p.status() != psutil.STATUS_ZOMBIE:
            left.append(" ".join(p.cmdline())[:200])
    except psutil.Error:
        pass
print(json.dumps({"code": code, "left": left}))
"""


@pytest.mark.slow
def test_a_local_ray_start_that_fails_is_a_clear_cli_error_and_leaves_nothing_running(tmp_path):
    import ray  # noqa: F401  (the test extra installs it: missing, fail, never skip)
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"prompt": "hi", "expected": "x"}\n')
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", FAILED_START, str(cases), str(tmp_path / "book")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 1
    assert "could not start a local Ray cluster" in done.stderr and "simulated" in done.stderr
    assert "no-such-model" not in done.stderr  # refused before any model loads
    assert report["left"] == []  # no gcs_server, raylet or agent left running


@pytest.mark.slow
def test_a_closed_engine_refuses_instead_of_starting_a_cluster_of_its_own(lora_pair, engine):
    """close() (or the end of a with-block), then a run: refused by name, where Ray would have
    started a default cluster that nothing stops. (This engine joins the module's cluster.)"""
    base, tuned = lora_pair
    with probe.ray_engine(workers=1, resources_per_worker={"CPU": 0}) as other:  # beside the module's workers
        assert other.map_batches(_pid_of_worker, [[1], [2]], pair=(base, tuned)) != []
    for run in (lambda: other.map_batches(_pid_of_worker, [[1]], pair=(base, tuned)), other.pids):
        with pytest.raises(RuntimeError, match="this engine is closed"):
            run()
    other.close()  # twice is harmless


@pytest.mark.slow
def test_an_engine_runs_again_on_its_own_cluster_after_an_error_or_a_ctrl_c(lora_pair, engine):
    """A bad batch, then a Ctrl-C in the driver's loop: each stops the workers, keeps the
    engine's cluster, and the next run works there. (Last in the module: on the old code the
    first error shut the module's cluster down.)"""
    import ray

    base, tuned = lora_pair
    gcs = ray.get_runtime_context().gcs_address
    from probe.distributed.ray_engine import check_address

    check_address(gcs)  # a real Ray head answers the handshake
    with pytest.raises(ValueError, match="a bad case in batch"):
        engine.map_batches(_bad_batch, [[1], [2], [3]], pair=(base, tuned))
    assert ray.is_initialized() and ray.get_runtime_context().gcs_address == gcs

    def interrupt(index, results):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.map_batches(_pid_of_worker, [[1], [2], [3]], pair=(base, tuned), on_batch=interrupt)
    assert ray.is_initialized() and ray.get_runtime_context().gcs_address == gcs
    pids = engine.map_batches(_pid_of_worker, [[1, 2], [3]], pair=(base, tuned))
    assert [len(p) for p in pids] == [2, 1] and set(sum(pids, [])) <= set(engine.pids())
    assert ray.get_runtime_context().gcs_address == gcs


@pytest.mark.slow
def test_attribution_on_ray_splits_the_examples_and_equals_the_local_scores(lora_pair, engine):
    """probe.attribute with engine=: examples in batches across the two workers, the query made
    once on the driver and broadcast; each worker rebuilds the pair (every adapter loaded)."""
    base, tuned = lora_pair
    records = [{"messages": [{"role": "user", "content": c["prompt"]},
                             {"role": "assistant", "content": c.get("expected", "three")}],
                "source": c["id"][0]} for c in CASES] * 2
    case = ("What is the capital of France?", " Paris", " Rome")
    kw = dict(methods=["gradient", "representation"], channel="source")
    local = probe.attribute((base, tuned), case, records, **kw)
    remote = probe.attribute((base, tuned), case, records, engine=engine, batch_size=3, **kw)
    assert len(remote.examples) == len(records) == 12
    assert [e.line for e in remote.examples] == [e.line for e in local.examples]
    for g, w in zip(remote.examples, local.examples):
        assert g.channel == w.channel and g.tokens == w.tokens and g.scored == w.scored
        # one torch thread on both sides, the same per-example computation: the same bits
        # (measured: every score of the 12 examples equal, gradient, cosine and hidden states)
        assert g.scores == w.scores, g.line
    assert len({round(e.scores["gradient"], 9) for e in local.examples[:6]}) == 6  # scores differ
