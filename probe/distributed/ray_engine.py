"""The Ray engine: probe's batch jobs on a Ray cluster.

    engine = probe.ray_engine(workers=4)                       # a local cluster, or
    engine = probe.ray_engine("10.0.0.5:6379", workers=8, resources_per_worker={"GPU": 1})
    results = probe.diagnose_many(base, tuned, "cases.jsonl", engine=engine)

Each worker is a Ray actor that loads the pair once, from the pair's loading recipe
(``probe.models.recipe``), and runs the batches it is sent. The driver forms the batches (the
same ones the local run forms), keeps ``depth`` of them in flight per worker, and stores each
result under its batch's index, so results come back in input order, bitwise the local run's.
A worker that dies (killed, out of memory) is replaced and the batches it held are sent again;
a batch is tried at most ``attempts`` times. An exception raised by probe's own code in a
batch is raised here, not retried; an error or a Ctrl-C stops the workers but keeps the
cluster, so the same engine runs again. ``close()`` (or the end of a ``with`` block) stops the
local cluster the engine started; a closed engine refuses to run (Ray would otherwise start a
default cluster that nothing stops). An address where nothing listens, or where something that
is not a Ray head listens, is a ConnectionError in seconds; a local start that fails is a
:class:`RayStartError`, with Ray's half-started processes stopped. Ray is imported only when an
engine is made.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Callable, Sequence

from ..models.recipe import pair_recipe, rebuild_pair

INSTALL = "the Ray engine needs Ray: pip install 'token-probe[ray]'"
QUIET_ENV = {  # before ray starts: no usage report, no auth token file, workers at normal priority
    "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_worker_niceness": "0",
    "RAY_DEDUP_LOGS": "0"}
# Joining a cluster: give up in seconds when its head does not answer (Ray's default retries for
# ~14 minutes). Not for a local start, whose head may take longer than that on a busy machine.
REMOTE_ENV = {"RAY_gcs_rpc_server_connect_timeout_s": "5", "RAY_py_gcs_connect_timeout_s": "10"}


def _ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(INSTALL) from err
    return ray


# The client's half of an HTTP/2 (gRPC) handshake, then an empty SETTINGS frame: a Ray head's GCS
# (and a Ray Client server) answers with a SETTINGS frame at once; a dashboard, a Redis or a
# silent listener does not.
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4


def _first_frame(sock: socket.socket, timeout: float) -> bytes:
    """Up to the 9 bytes of the first frame header the peer sends within ``timeout`` seconds."""
    sock.settimeout(timeout)
    sock.sendall(_H2_HELLO)
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < 9:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(9 - len(got))
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        got += chunk
        if time.monotonic() >= deadline:
            break
    return got


def check_address(address: str, timeout: float = 3.0) -> None:
    """Raise ConnectionError naming ``address`` when nothing listens there, or when what listens
    is not a Ray head (it does not answer a gRPC handshake within ``timeout`` seconds: a
    dashboard port, a Redis, another service), before Ray retries for minutes and before any
    model loads."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Ray address must be HOST:PORT, got {address!r}")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as err:
        raise ConnectionError(f"no Ray cluster at {address}: {err}. Start one with "
                              f"`ray start --head --port {port}` or give the head's address") from None
    if os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        sock.close()  # a TLS head does not speak plain HTTP/2: leave the handshake to Ray
        return
    with sock:
        try:
            head = _first_frame(sock, timeout)
        except OSError:
            head = b""
    if len(head) < 9 or head[3] != _H2_SETTINGS:
        said = "said nothing" if not head else f"answered {head[:9]!r}, not gRPC"
        raise ConnectionError(
            f"no Ray head at {address}: something listens there but {said} within {timeout:.0f} s "
            "(a dashboard port, a Redis or another service?). Give the head's GCS address "
            "(HOST:6379 by default; `ray start --head` prints it)")


class RayStartError(RuntimeError):
    """A local Ray cluster could not start (what was started is stopped again)."""


def _start(ray, kwargs: dict, address: str | None, tries: int = 1) -> None:
    """``ray.init(**kwargs)``; where it fails, stop whatever it started (a half-started local
    cluster keeps running otherwise) and try again, ``tries`` times in all; then raise a clear
    error naming what failed."""
    import psutil  # Ray's own copy, importable once ray is

    for attempt in range(1, tries + 1):
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        try:
            ray.init(**kwargs)
            return
        except BaseException as err:
            try:
                ray.shutdown()  # stops the processes of a half-started node, even when init failed
            finally:
                _stop_new_children(psutil, before)
            if not isinstance(err, Exception):  # Ctrl-C: cleaned up, and still a Ctrl-C
                raise
            if address is not None:
                raise ConnectionError(f"could not join the Ray cluster at {address}: {err}") from None
            if attempt == tries:
                raise RayStartError(
                    f"could not start a local Ray cluster ({tries} tries): {type(err).__name__}: "
                    f"{str(err)[:500]} (a busy machine can make Ray's processes miss their start-up "
                    "deadlines: try again, or start one with `ray start --head` and give its address); "
                    "nothing it started is left running") from None


def _stop_new_children(psutil, before: set[int]) -> None:
    """Kill this process's children (and theirs) that were not there before (Ray's processes
    that ``ray.shutdown()`` did not know about)."""
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and _is_ray(p)]
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=5)


def _is_ray(proc) -> bool:
    try:
        return any("ray" in part for part in [proc.name(), *proc.cmdline()])
    except Exception:  # noqa: BLE001 - gone already, or not ours to read
        return False


class PairWorker:
    """A worker's state: the pair, loaded once. (Made a Ray actor by :class:`RayEngine`.)"""

    def __init__(self, recipe: dict, threads: int | None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.base, self.tuned = rebuild_pair(recipe)

    def pid(self) -> int:
        return os.getpid()

    def run(self, fn, batch):
        return fn(self.base, self.tuned, batch)


class RayEngine:
    """Runs batches on ``workers`` Ray actors (see the module doc). Use :func:`ray_engine`."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 2, *, resources_per_worker: dict | None = None,
                 threads: int | None = None, depth: int = 2, attempts: int = 3, ready_timeout: float = 600.0,
                 temp_dir: str | None = None, start_tries: int = 2):
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        if not isinstance(start_tries, int) or isinstance(start_tries, bool) or start_tries < 1:
            raise ValueError(f"start_tries must be a positive int, got {start_tries!r}")
        ray = _ray()
        if address not in (None, "auto", "local"):
            check_address(address)
        remote = address not in (None, "local")
        for k, v in {**QUIET_ENV, **(REMOTE_ENV if remote else {})}.items():
            os.environ.setdefault(k, v)
        res = dict(resources_per_worker or {"CPU": 1})
        self.actor_options = {"num_cpus": res.pop("CPU", 0), "num_gpus": res.pop("GPU", 0),
                              "resources": res or None, "max_restarts": 0, "max_task_retries": 0,
                              "runtime_env": None}
        self.workers, self.threads, self.depth, self.attempts = workers, threads, depth, attempts
        self.ready_timeout = ready_timeout
        self.replaced = 0  # workers replaced after dying, over this engine's life
        self._pool: dict = {}  # recipe key -> list of actors
        self._started = False
        self._closed = False
        if not ray.is_initialized():
            kwargs = {"address": None if address in (None, "local") else address, "log_to_driver": False,
                      "logging_level": logging.ERROR}
            if kwargs["address"] is None:  # a local cluster just for this engine
                kwargs.update(num_cpus=max(os.cpu_count() or 1, int(workers * self.actor_options["num_cpus"])),
                              include_dashboard=False, object_store_memory=100 * 2**20,
                              _temp_dir=temp_dir or f"/tmp/ray-{os.getuid()}")
            _start(ray, kwargs, address if remote else None, 1 if remote else start_tries)
            self._started = True  # this engine connected: close() disconnects (and stops a local cluster)
        self._local = self._started and not remote
        if self._local:  # workers on this machine import the driver's probe, whatever is installed
            self.actor_options["runtime_env"] = {"env_vars": {"PYTHONPATH": str(Path(__file__).parents[2])}}
        self._ray = ray

    def _actor(self, recipe):
        ray = self._ray
        cls = ray.remote(**{k: v for k, v in self.actor_options.items() if v is not None})(PairWorker)
        return cls.remote(recipe, self.threads)

    def _actors(self, pair) -> list:
        recipe = pair_recipe(*pair)
        key = repr(sorted(recipe.items()))
        if key not in self._pool:
            for old in [k for k in self._pool if k != key]:  # one pair's workers at a time
                self._kill(self._pool.pop(old))
            actors = [self._actor(recipe) for _ in range(self.workers)]
            self._pool[key] = actors
            self._wait_ready(actors)
        return self._pool[key]

    def _wait_ready(self, actors) -> None:
        ray = self._ray
        refs = [a.pid.remote() for a in actors]
        try:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.ready_timeout)
            ray.get(ready)
        except ray.exceptions.RayActorError as err:
            self._stop_workers()
            raise RuntimeError(f"a Ray worker could not load the pair: {err}") from None
        if len(ready) < len(refs):
            self._stop_workers()
            raise TimeoutError(f"{len(refs) - len(ready)} of {len(refs)} Ray workers did not start within "
                               f"{self.ready_timeout:.0f} s: does the cluster have {self.workers} x "
                               f"{self.actor_options['num_cpus']} CPU, {self.actor_options['num_gpus']} GPU free?")

    def pids(self) -> list[int]:
        """The process ids of the current workers (for tests and monitoring)."""
        self._check_open()
        return [self._ray.get(a.pid.remote()) for actors in self._pool.values() for a in actors]

    def map_batches(self, fn: Callable, batches: Sequence, *, pair: tuple,
                    on_batch: Callable[[int, list], None] | None = None) -> list[list]:
        self._check_open()
        ray = self._ray
        actors = self._actors(pair)
        recipe = pair_recipe(*pair)
        queue = deque(range(len(batches)))
        tries = [0] * len(batches)
        inflight: dict = {}  # ref -> (worker slot, batch index)
        done: dict[int, list] = {}
        fn_ref = ray.put(fn)

        def fill(slot):
            while queue and sum(s == slot for s, _ in inflight.values()) < self.depth:
                b = queue.popleft()
                tries[b] += 1
                if tries[b] > self.attempts:
                    raise RuntimeError(f"batch {b} was lost {self.attempts} times (its worker died each time)")
                inflight[actors[slot].run.remote(fn_ref, batches[b])] = (slot, b)

        try:
            for slot in range(len(actors)):
                fill(slot)
            while inflight:
                [ref], _ = ray.wait(list(inflight), num_returns=1)
                slot, b = inflight.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayTaskError as err:  # probe's own code raised: not retried
                    raise err.as_instanceof_cause() from None
                except ray.exceptions.RayActorError as err:
                    if getattr(err, "actor_init_failed", False):
                        raise RuntimeError(f"a Ray worker could not load the pair: {err}") from None
                    lost = [b] + [bb for s, bb in inflight.values() if s == slot]
                    for r in [r for r, (s, _) in inflight.items() if s == slot]:
                        del inflight[r]
                    self._kill([actors[slot]])
                    actors[slot] = self._actor(recipe)
                    self.replaced += 1
                    logging.getLogger("probe").warning("Ray worker %d died; replaced, batches %s sent again",
                                                       slot, sorted(lost))
                    queue.extendleft(sorted(lost, reverse=True))
                    fill(slot)
                    continue
                if b in done:
                    raise RuntimeError(f"batch {b} came back twice")
                done[b] = results
                if on_batch is not None:
                    on_batch(b, results)
                fill(slot)
        except BaseException:
            self._stop_workers()  # a half-run leaves no worker busy; the cluster stays for the next run
            raise
        return [done[b] for b in range(len(batches))]

    def _kill(self, actors) -> None:
        for a in actors:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    def _stop_workers(self) -> None:
        for actors in self._pool.values():
            self._kill(actors)
        self._pool.clear()

    def _check_open(self) -> None:
        """Refuse to run on a closed engine, or after Ray was shut down under it: Ray would
        start a default cluster of its own, which this engine could not stop."""
        if self._closed:
            raise RuntimeError("this engine is closed (close() ran, or its with-block ended): "
                               "make a new one with probe.ray_engine(...)")
        if not self._ray.is_initialized():
            self._closed = True
            raise RuntimeError("Ray was shut down under this engine (ray.shutdown() elsewhere), so "
                               "this engine is closed: make a new one with probe.ray_engine(...)")

    def close(self) -> None:
        """Stop the workers (and the local cluster this engine started). A closed engine
        refuses to run; closing twice is harmless."""
        if self._ray.is_initialized():
            self._stop_workers()
        self._pool.clear()
        self._closed = True
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RayEngine(workers={self.workers}, {self.actor_options['num_cpus']} CPU/{self.actor_options['num_gpus']} GPU each)"


def ray_engine(address: str | None = None, workers: int = 2, resources_per_worker: dict | None = None,
               **options) -> RayEngine:
    """An engine that runs probe's batch jobs on Ray workers, each holding the model pair.

    Args:
        address: a running cluster's head ("HOST:PORT", "auto"); None starts a local one.
            An address where nothing listens is a ConnectionError at once.
        workers: how many actors; each loads the pair once.
        resources_per_worker: Ray resources per actor, e.g. ``{"CPU": 4, "GPU": 1}``
            (default one CPU).
        options: ``threads`` (torch threads per worker), ``depth`` (batches in flight per
            worker, 2), ``attempts`` (tries per batch when workers die, 3), ``ready_timeout``
            (seconds for the workers to load the pair, 600), ``temp_dir`` (local cluster),
            ``start_tries`` (tries to start a local cluster, 2: Ray gives its processes 30 s to
            register, which a loaded machine can miss).
    """
    return RayEngine(address, workers, resources_per_worker=resources_per_worker, **options)
