"""Executors: where the runs of a suite are trained. The runner hands runs to an executor and records what comes
back; the main process is the only writer of ``results.sqlite`` (SQLite in WAL mode must not be shared over a
network filesystem), so workers only return an :class:`Outcome`.

- ``local`` with ``jobs=1``: in this process, one run after another (per-epoch progress bars).
- ``local`` with ``jobs=N``: a pool of N worker processes on this machine, torch threads split across them.
- ``ray``: Ray core tasks, one per run (optional extra ``mfm-bench[ray]``).
"""

from __future__ import annotations

from .base import Execution, Executor, Outcome, usable_cores, worker_threads
from .dispatch import drive, make_executor

__all__ = ["Execution", "Executor", "Outcome", "usable_cores", "worker_threads", "drive", "make_executor"]
