"""The Ray executor: one Ray core task per run, with resources per task (CPUs, a fraction of a GPU).

It connects to an existing cluster (``address``, else ``RAY_ADDRESS``) or starts a local one. A task whose worker
dies is retried as Ray allows (``max_retries``); an error after that is recorded as the run's failure and the
other runs go on. Tasks return their files (model, history) with the outcome, so the main process, the only
writer of the output folder, needs no filesystem shared with the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import is_disk_full
from .base import Execution, Executor, ExecutorError, Outcome

_DATASETS: dict[str, Any] = {}  # per Ray worker process: each distinct dataset is built once


def _task(run: Any, threads: int) -> Outcome:
    from .. import runner

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    return runner.perform(run, None, _DATASETS, None)


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
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}} if address else None,
            )
        self.threads = threads
        self.remote = ray.remote(num_cpus=execution.cpus, num_gpus=execution.gpus, max_retries=execution.retries)(_task)
        total = ray.cluster_resources().get("CPU", 1)
        self.slots = max(1, int(total // max(execution.cpus, 1e-3)))
        self.refs: dict[Any, str] = {}
        self.execution = execution

    def describe(self) -> dict[str, Any]:
        return {"executor": "ray", "cpus_per_run": self.execution.cpus, "gpus_per_run": self.execution.gpus}

    def submit(self, run: Any) -> None:
        self.refs[self.remote.remote(run, self.threads)] = run.id

    def wait(self) -> list[tuple[str, Outcome]]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        done = []
        for ref in ready:
            run_id = self.refs.pop(ref)
            try:
                done.append((run_id, self.ray.get(ref)))
            except Exception as e:  # noqa: BLE001 - a lost or failed task is recorded, the other runs go on
                if is_disk_full(getattr(e, "cause", None) or e):  # every later run would fail the same way
                    raise
                done.append((run_id, Outcome("failed", error=f"ray task failed: {type(e).__name__}: {e}")))
        return done

    def cancel(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        self.refs.clear()


def write_files(run_dir: Path, files: dict[str, bytes]) -> None:
    from ..io import atomic_write

    for name, blob in files.items():
        atomic_write(run_dir / name, blob)
