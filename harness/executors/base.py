"""The executor interface: ``submit`` runs up to ``slots`` at once, ``wait`` returns finished ones, ``cancel``
stops everything (Ctrl-C). Outcomes are plain data, so they cross process and machine boundaries."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..errors import MfmBenchError

KINDS = ("local", "ray")


class ExecutorError(MfmBenchError):
    """An executor that cannot start (an extra not installed, a bad setting)."""


@dataclass
class Execution:
    """How a suite is executed: ``kind`` (local or ray), ``jobs`` (local: worker processes), ``address`` (ray:
    a cluster address, ``auto``, or None for ``RAY_ADDRESS`` / a local cluster), ``retries`` (a lost worker's run
    is retried this many times, then recorded failed), ``cpus``/``gpus`` per run (ray resources)."""

    kind: str = "local"
    jobs: int = 1
    address: str | None = None
    retries: int = 1
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ExecutorError(f"unknown executor {self.kind!r}; executors are {', '.join(KINDS)}")
        if self.jobs < 1:
            raise ExecutorError(f"jobs must be at least 1, got {self.jobs}")
        if self.retries < 0:
            raise ExecutorError(f"retries must be 0 or more, got {self.retries}")


@dataclass
class Outcome:
    """What a worker returns for one run: its status (finished or failed), metric rows (condition, split,
    metric, value; cost rows included), environment record (with the data fingerprint), seconds, error text,
    files for the run folder when the worker could not write them itself (``{"model.pt": bytes, ...}``), each
    epoch's (epoch, history row) for the trackers, and how many attempts it took."""

    status: str
    rows: list[tuple[str, str, str, float]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    attempts: int = 1
    epochs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def pruned(self) -> bool:
        """A finished search trial that a search's pruner stopped early (its ``pruned_epoch`` row)."""
        return self.status == "finished" and any(m == "pruned_epoch" for _, _, m, _ in self.rows)


class Executor(ABC):
    """Runs :class:`~mfm_bench.runner.Run` objects; ``slots`` of them at once."""

    kind = "local"
    slots = 1
    #: True when the executor calls the trackers' ``on_epoch_end`` itself as epochs end (in the main process);
    #: else :func:`~mfm_bench.executors.drive` replays an outcome's epochs when the run ends
    live_epochs = False
    #: ``ask(run, epoch, value) -> bool``: the search pruner of the main process (set by
    #: :func:`~mfm_bench.executors.drive`); an executor that can reach it mid-run passes it to each run
    ask: Any = None

    @abstractmethod
    def submit(self, run: Any) -> None:
        """Start ``run`` (at most ``slots`` are in flight)."""

    @abstractmethod
    def wait(self) -> list[tuple[str, Outcome]]:
        """Block until at least one submitted run is done; return (run id, outcome) of every done run."""

    def cancel(self) -> None:  # noqa: B027 - optional: an executor without workers has nothing to stop
        """Stop every worker now (Ctrl-C); in-flight runs are lost and recorded interrupted by the caller."""

    def close(self) -> None:  # noqa: B027 - optional, like cancel
        """Release workers after a normal end."""

    def describe(self) -> dict[str, Any]:
        return {"executor": self.kind}


def worker_threads(jobs: int, cores: int | None = None) -> int:
    """Torch threads per job so that ``jobs`` jobs on ``cores`` cores never oversubscribe (at least 1)."""
    if cores is None:
        cores = usable_cores()
    return max(1, cores // max(1, jobs))


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (``os.sched_getaffinity``, which honours taskset and cgroup
    cpusets, unlike ``os.cpu_count``) where the platform has one (not macOS or Windows), else the CPU count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
