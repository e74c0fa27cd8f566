"""Local executors: in this process (``jobs=1``), or a pool of worker processes (``jobs=N``).

The pool is a few dozen lines over :mod:`multiprocessing` rather than :class:`concurrent.futures.ProcessPoolExecutor`
because a worker killed mid-run must cost only its own run: the standard pool marks itself broken and fails every
pending future, and cannot say which run the dead worker held. Here each worker has its own pipe and process
sentinel, so a dead worker's run is retried on a fresh worker (``retries``) and then recorded failed.
Where this process has not imported torch yet (``mfm-bench run`` starts its pool before anything else), it
imports torch once and forks its workers from itself (:func:`can_fork_here`); otherwise workers are forked from
multiprocessing's fork server, which imports torch once (:func:`start_context`), or spawned where there is none.
Each way is safe with CUDA and with torch's thread pools. Workers ignore SIGINT: Ctrl-C reaches the main process,
which terminates them.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Any

from .base import Executor, Outcome


class SequentialExecutor(Executor):
    """One run at a time, in this process; the only executor that shows per-epoch progress bars and calls the
    trackers' ``on_epoch_end`` as each epoch ends (parallel executors' runs report their epochs at run end)."""

    live_epochs = True

    def __init__(self, out: Path, progress: Any = None) -> None:
        self.out, self.progress = out, progress
        self.pending: list[Any] = []
        self.datasets: dict[str, Any] = {}

    def submit(self, run: Any) -> None:
        self.pending.append(run)

    def wait(self) -> list[tuple[str, Outcome]]:
        from .. import runner
        from ..tracking import call

        run = self.pending.pop(0)

        def on_epoch(epoch: int, row: dict[str, Any]) -> None:
            call("on_epoch_end", run_id=run.id, epoch=epoch, metrics=row)

        ask = (lambda epoch, value: self.ask(run, epoch, value)) if self.ask is not None else None
        return [(run.id, runner.perform(run, self.out, self.datasets, self.progress, on_epoch, ask))]


@dataclass(frozen=True, slots=True)
class Report:
    """A worker's question mid-run (a search trial's validation value after an epoch): the main process answers
    True (stop: pruned) or False through the same pipe."""

    run_id: str
    epoch: int
    value: float


def _worker(conn: Any, threads: int) -> None:
    """A worker process: take (run, out) from ``conn``, send back (run id, outcome), until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and terminates us
    # a spawned worker reads these when it imports torch; a forked one (from this process or the fork server) has
    # torch already, and each run sets its torch threads itself (the Trainer)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    from .. import runner
    from . import preload  # noqa: F401 - what every run needs, before the first one arrives (forked: already in)

    datasets: dict[str, Any] = {}  # each distinct dataset is built once per worker
    while True:
        msg = conn.recv()
        if msg is None:  # every outcome went back through the pipe: nothing left to save
            _exit_now()
        run, out = msg

        def ask(epoch: int, value: float, run_id: str = run.id) -> bool:
            conn.send(Report(run_id, epoch, value))
            return bool(conn.recv())

        try:
            conn.send((run.id, runner.perform(run, Path(out), datasets, None, ask=ask)))
        except Exception as e:  # noqa: BLE001 - a full disk: the main process stops the suite with it
            conn.send((run.id, e))


def _exit_now() -> None:
    """End the worker without the interpreter's shutdown: tearing down torch and the loaded datasets took 0.8 s
    per worker on 2 cores, and the main process waits for its workers before the suite ends. Nothing is lost: a
    worker writes nothing after it sent its last outcome, and the trackers run in the main process."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


class _Slot:
    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, threads), daemon=True, name="mfm-bench-worker")
        self.proc.start()
        child.close()
        self.run: Any = None
        self.attempts = 0


def can_fork_here() -> bool:
    """True where a pool may fork its workers from this process: Linux, torch not imported yet (so no torch
    operation has run: no OpenMP team, whose state a forked child inherits broken, and no CUDA context), no Python
    thread but this one, and ``MFM_BENCH_START`` unset. The pool then imports torch here first, so each worker
    starts with it in memory, as it would from the fork server, without waiting for the server's own start and
    imports (the workers were ready 0.26 s sooner in one timeline on 2 cores, docs/scaling.md)."""
    return (
        sys.platform.startswith("linux")
        and "MFM_BENCH_START" not in os.environ
        and "torch" not in sys.modules
        and threading.active_count() == 1
        and "fork" in mp.get_all_start_methods()
    )


def start_context() -> Any:
    """How workers start: forked from multiprocessing's fork server where the platform has one (Linux, macOS), else
    spawned (``MFM_BENCH_START=spawn`` forces spawn). The server is a fresh process that imports torch once
    (``preload.py``) and never runs a torch operation, so forking it is safe (a child forked from a process that had
    run an OpenMP team can hang); each worker forked from it starts with torch in memory instead of importing it."""
    if os.environ.get("MFM_BENCH_START", "forkserver") != "spawn" and "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["mfm_bench.executors.preload"])  # read when the server starts (once per process)
        return ctx
    return mp.get_context("spawn")


class ProcessExecutor(Executor):
    """``jobs`` worker processes on this machine, each with ``threads`` torch threads.

    Forked from this process where :func:`can_fork_here`, at once. Otherwise started from a thread: the first
    start launches the fork server and waits until it has imported torch, and this process goes on with its own
    checks and imports meanwhile. A worker that replaces a dead one always comes from the fork server (or spawn):
    by then this process has threads and has imported torch."""

    def __init__(self, out: Path, jobs: int, threads: int, retries: int = 1) -> None:
        self.out, self.slots, self.threads, self.retries = out, jobs, threads, retries
        self._workers: list[_Slot] = []
        self._failed: BaseException | None = None
        self.retried = 0
        self._replacements: Any = None  # the context of workers that replace dead ones (made when first needed)
        self._starter: threading.Thread | None = None
        if can_fork_here():
            from . import preload  # noqa: F401 - torch and the runner, once, for every worker

            # objects from before the fork never collected again: the workers' collections would otherwise write
            # to every page of them, copying the memory they share with this process
            gc.freeze()
            self.ctx = mp.get_context("fork")
            self._start()  # here, in this thread: no other thread may run while this process forks
        else:
            self.ctx = start_context()
            self._starter = threading.Thread(target=self._start, name="mfm-bench-pool-start", daemon=True)
            self._starter.start()

    def _start(self) -> None:
        try:
            for _ in range(self.slots):
                self._workers.append(_Slot(self.ctx, self.threads))
        except BaseException as e:  # noqa: BLE001 - raised again where the workers are first needed
            self._failed = e

    @property
    def workers(self) -> list[_Slot]:
        """The worker slots, once every worker has started (raises what stopped one from starting)."""
        self._join_starter()
        if self._failed is not None:
            raise self._failed
        return self._workers

    def _join_starter(self) -> None:
        if self._starter is not None:
            self._starter.join()

    def _replacement(self) -> _Slot:
        """A worker in place of a dead one."""
        if self._replacements is None:
            self._replacements = self.ctx if self.ctx.get_start_method() != "fork" else start_context()
        return _Slot(self._replacements, self.threads)

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "jobs": self.slots}

    def pids(self) -> dict[str, int]:
        """Run id -> pid of the worker training it."""
        return {w.run.id: w.proc.pid for w in self.workers if w.run is not None}

    def submit(self, run: Any) -> None:
        slot = next(w for w in self.workers if w.run is None)
        slot.run, slot.attempts = run, 1
        slot.conn.send((run, str(self.out)))

    def wait(self) -> list[tuple[str, Outcome]]:
        busy = [w for w in self.workers if w.run is not None]
        ready = set(wait_any([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
        done = []
        for w in busy:
            if w.conn in ready or w.proc.sentinel in ready:
                got = self._collect(w)
                if got is not None:
                    done.append(got)
        return done

    def _collect(self, w: _Slot) -> tuple[str, Outcome] | None:
        """The outcome ``w`` sent; or, when it died, retry its run on a fresh worker or report it failed."""
        try:
            if w.conn.poll():
                msg = w.conn.recv()
                if isinstance(msg, Report):  # a question mid-run, not the end of it
                    w.conn.send(bool(self.ask(w.run, msg.epoch, msg.value)) if self.ask is not None else False)
                    return None
                run_id, outcome = msg
                if isinstance(outcome, BaseException):  # what perform lets through (a full disk) stops the suite
                    w.run = None
                    raise outcome
                outcome.attempts = w.attempts
                w.run = None
                return run_id, outcome
        except (EOFError, OSError):
            pass
        if w.proc.is_alive():
            return None
        w.proc.join()
        run, attempts, code = w.run, w.attempts, w.proc.exitcode
        self.workers[self.workers.index(w)] = fresh = self._replacement()
        if attempts <= self.retries:
            fresh.run, fresh.attempts = run, attempts + 1
            fresh.conn.send((run, str(self.out)))
            self.retried += 1
            return None
        return run.id, Outcome(
            "failed", error=f"worker process died (exit code {code}) after {attempts} attempt(s)", attempts=attempts
        )

    def cancel(self) -> None:
        self._join_starter()
        for w in self._workers:
            w.proc.terminate()
        for w in self._workers:
            w.proc.join(5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()

    def close(self) -> None:
        self._join_starter()
        for w in self._workers:
            if not w.attempts and w.proc.is_alive():  # never given a run (nothing to do): no need to wait
                w.proc.terminate()  # for it to finish importing torch
                continue
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in self._workers:
            w.proc.join(10)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join()
