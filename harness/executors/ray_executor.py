"""The Ray executor: one Ray core task per run, with resources per task (CPUs, a fraction of a GPU).

It connects to an existing cluster (``address``, else ``RAY_ADDRESS``) or starts a local one. A task whose worker
dies is retried as Ray allows (``max_retries``); an error after that is recorded as the run's failure and the
other runs go on. Tasks return their files (model, history) with the outcome, so the main process, the only
writer of the output folder, needs no filesystem shared with the cluster.

A search with a pruner: a trial's task asks after each epoch through a small asynchronous actor (:class:`Board`,
no CPU reserved), which holds the question until the main process, polling it while it waits for tasks, answers
with the study's decision. Optuna stays in the main process.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from ..errors import is_disk_full
from .base import Execution, Executor, ExecutorError, Outcome

_DATASETS: dict[str, Any] = {}  # per Ray worker process: each distinct dataset is built once


#: how often the main process looks for questions from trials while it waits for tasks (pruning only). Our
#: choice: a trial waits at most this long for each epoch's answer, a small part of an epoch of even the smallest
#: models here, and the main process makes 20 round trips a second to the actor, not more
POLL_S = 0.05

#: how long the address of a cluster may take to accept a connection before we say nothing answers there (Ray
#: itself retries for minutes). Our choice: a head node on a local network answers in milliseconds, one across
#: the world well under a second
CONNECT_S = 5.0


def _task(run: Any, threads: int, board: Any = None) -> Outcome:
    from .. import runner

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    ask = None
    if board is not None:
        import ray

        def ask(epoch: int, value: float) -> bool:
            return bool(ray.get(board.ask.remote(run.id, epoch, value)))

    return runner.perform(run, None, _DATASETS, None, ask=ask)


class Board:
    """Questions from trials mid-run (run id, epoch, value) and the main process's answers. An asynchronous actor:
    each waiting ``ask`` costs a coroutine, not a thread."""

    def __init__(self) -> None:
        self.questions: dict[tuple[str, int], float] = {}
        self.events: dict[tuple[str, int], Any] = {}
        self.answers: dict[tuple[str, int], bool] = {}

    async def ask(self, run_id: str, epoch: int, value: float) -> bool:
        import asyncio

        key = (run_id, epoch)
        self.events[key] = event = asyncio.Event()
        self.questions[key] = value
        await event.wait()
        del self.events[key]
        return self.answers.pop(key)

    async def pending(self) -> dict[tuple[str, int], float]:
        questions, self.questions = self.questions, {}
        return questions

    async def answer(self, key: tuple[str, int], decision: bool) -> None:
        if key in self.events:
            self.answers[key] = decision
            self.events[key].set()


class RayExecutor(Executor):
    kind = "ray"

    def __init__(self, execution: Execution, threads: int) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install 'mfm-bench[ray]'") from None
        self.ray = ray
        address = execution.address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            _connect(ray, address, "--ray-address" if execution.address else "RAY_ADDRESS", threads)
            try:
                _check_resources(ray, execution)
            except ExecutorError:
                ray.shutdown()  # the cluster this process started, or its connection to another
                raise
        else:
            _check_resources(ray, execution)
        self.threads = threads
        self.remote = ray.remote(num_cpus=execution.cpus, num_gpus=execution.gpus, max_retries=execution.retries)(_task)
        total = ray.cluster_resources().get("CPU", 1)
        self.slots = max(1, int(total // max(execution.cpus, 1e-3)))
        self.refs: dict[Any, str] = {}
        self.runs: dict[str, Any] = {}
        self.board: Any = None  # made when the first trial that may be pruned is submitted
        self.execution = execution

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "cpus_per_run": self.execution.cpus, "gpus_per_run": self.execution.gpus}

    def submit(self, run: Any) -> None:
        if self.ask is not None and self.board is None:
            self.board = self.ray.remote(num_cpus=0)(Board).remote()
        self.runs[run.id] = run
        self.refs[self.remote.remote(run, self.threads, self.board)] = run.id  # no board: no pruning

    def wait(self) -> list[tuple[str, Outcome]]:
        while True:
            timeout = POLL_S if self.board is not None else None
            ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout)
            if self.board is not None:
                self._answer()
            if ready:
                break
        done = []
        for ref in ready:
            run_id = self.refs.pop(ref)
            self.runs.pop(run_id, None)
            try:
                done.append((run_id, self.ray.get(ref)))
            except Exception as e:  # noqa: BLE001 - a lost or failed task is recorded, the other runs go on
                if is_disk_full(getattr(e, "cause", None) or e):  # every later run would fail the same way
                    raise
                done.append((run_id, Outcome("failed", error=f"ray task failed: {type(e).__name__}: {e}")))
        return done

    def _answer(self) -> None:
        """Answer the trials' questions with the search's pruner (``self.ask``)."""
        for (run_id, epoch), value in self.ray.get(self.board.pending.remote()).items():
            run = self.runs.get(run_id)
            decision = bool(self.ask(run, epoch, value)) if run is not None else False
            self.board.answer.remote((run_id, epoch), decision)

    def cancel(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        self.refs.clear()
        self.close()

    def close(self) -> None:
        if self.board is not None:
            self.ray.kill(self.board)
            self.board = None


def _connect(ray: Any, address: str | None, flag: str, threads: int) -> None:
    """``ray.init`` on ``address`` (``flag`` says where it came from), or a local cluster when None; a cluster
    that is not there is one :class:`ExecutorError` naming our option, not Ray's, within :data:`CONNECT_S`."""
    if address and address not in ("auto", "local"):
        _reachable(address, flag)
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}} if address else None,
        )
    except ConnectionError:  # "Could not find any running Ray instance" (an OSError: not a storage error)
        hint = "or drop --ray-address to start a local one" if flag == "--ray-address" else "or unset RAY_ADDRESS"
        raise ExecutorError(
            f"{flag} {address}: no running Ray cluster found (start one with `ray start --head`, {hint})"
        ) from None


def _reachable(address: str, flag: str) -> None:
    """Refuse an address where nothing accepts a connection within :data:`CONNECT_S` (Ray would retry for
    minutes, printing its own warnings)."""
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(
            f"{flag} {address}: not a Ray cluster address; give auto, HOST:PORT (the head node's GCS, 6379 by "
            "default) or ray://HOST:10001"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S).close()
    except OSError as e:
        raise ExecutorError(
            f"{flag} {address}: nothing answers at {host}:{port} within {CONNECT_S:g} s ({e.strerror or e}); "
            "check the head node's address and port (`ray status` on it), or drop --ray-address to start a local "
            "cluster"
        ) from None


def _check_resources(ray: Any, execution: Execution) -> None:
    """Refuse a request per run (``cpus``, ``gpus``) that no node of the cluster can meet: Ray would wait for
    such a node forever."""
    need = {"CPU": execution.cpus, "GPU": execution.gpus}
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", True)]
    if any(all(r.get(k, 0.0) >= v for k, v in need.items() if v > 0) for r in nodes):
        return
    have = ", ".join(
        f"{r.get('CPU', 0):g} CPU / {r.get('GPU', 0):g} GPU" for r in sorted(nodes, key=lambda r: -r.get("GPU", 0))
    )
    raise ExecutorError(
        f"each run asks Ray for {execution.cpus:g} CPU and {execution.gpus:g} GPU (executor cpus / gpus in the "
        f"suite), but no node of the cluster has that (its nodes: {have or 'none'}); lower executor.cpus / gpus "
        "(gpus: 0 on a cluster without GPUs), or add a node that has them"
    )


def write_files(run_dir: Path, files: dict[str, bytes]) -> None:
    from ..io import atomic_write

    for name, blob in files.items():
        atomic_write(run_dir / name, blob)
