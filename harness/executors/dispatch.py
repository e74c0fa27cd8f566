"""The main process's loop: hand runs to an executor, record each outcome in the store, keep one suite bar.

The store and the trackers' hooks belong to this process: ``on_run_start`` when a run is handed to the executor
(its environment then is the executor's; the full one is in the store when the run ends), ``on_epoch_end`` live
with the in-process executor and replayed from the outcome at run end with worker processes or Ray, and
``on_run_end`` for every finished, failed or interrupted run.

A *source* gives the runs: ``next()`` returns the next run to start, or None when none can start now (a search
waits for results); ``done(run, outcome)`` tells it a run ended. A plain grid is a list; a search asks Optuna.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Execution, Executor, Outcome, worker_threads


class GridSource:
    """The runs of a fixed list, in order."""

    def __init__(self, runs: list[Any]) -> None:
        self.runs = list(runs)

    def next(self) -> Any:
        return self.runs.pop(0) if self.runs else None

    def done(self, run: Any, outcome: Outcome) -> None:
        pass


def make_executor(execution: Execution, out: Path, threads: int, progress: Any = None) -> Executor:
    """The executor ``execution`` asks for; ``threads``: torch threads per run (0: split the cores across jobs)."""
    if execution.kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(execution, threads or 1)
    from .local import ProcessExecutor, SequentialExecutor

    if execution.jobs == 1:
        return SequentialExecutor(out, progress)
    return ProcessExecutor(out, execution.jobs, threads or worker_threads(execution.jobs), execution.retries)


def record(store: Any, out: Path, run: Any, outcome: Outcome) -> None:
    """Write ``outcome`` of ``run`` (:func:`store_outcome`), then the trackers hear how it ended."""
    store_outcome(store, out, run, outcome)
    tell_end(run.id, outcome)


def store_outcome(store: Any, out: Path, run: Any, outcome: Outcome) -> None:
    """Write ``outcome`` of ``run``: files returned by the worker first, then its row and metrics in one
    transaction."""
    from .ray_executor import write_files

    if outcome.files:
        write_files(out / "runs" / run.id, outcome.files)
    if outcome.status == "finished":
        store.finish(run.id, outcome.rows, outcome.seconds, outcome.environment)
    else:
        store.fail(run.id, outcome.error or "failed", outcome.seconds, environment=outcome.environment or None)


def tell_end(run_id: str, outcome: Outcome) -> None:
    """``on_run_end`` with the run's status, and its metrics when it finished."""
    from ..tracking import call, flat_metrics

    metrics = flat_metrics(outcome.rows) if outcome.status == "finished" else {}
    call("on_run_end", run_id=run_id, status=outcome.status, metrics=metrics)


class SuiteBar:
    """One bar for the suite: runs finished, running and failed."""

    def __init__(self, name: str, total: int, progress: bool, log: Callable[[str], None]) -> None:
        from tqdm.auto import tqdm

        # disable=None: tqdm's own check, so no bar floods a log file or a pipe (stderr that is not a terminal)
        self.bar = tqdm(total=total, desc=name, unit="run", disable=None if progress else True)
        self.log = self.bar.write if progress else log
        self.running = self.finished = self.failed = 0

    def update(self, started: int = 0, status: str | None = None) -> None:
        self.running += started - (status is not None)
        self.finished += status == "finished"
        self.failed += status not in (None, "finished")
        if status is not None:
            self.bar.update(1)
        self.bar.set_postfix(finished=self.finished, running=self.running, failed=self.failed, refresh=False)

    def grow(self, n: int) -> None:
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def drive(
    executor: Executor,
    source: Any,
    store: Any,
    out: Path,
    bar: SuiteBar,
    counts: dict[str, int],
    on_idle_slot: Callable[[], None] | None = None,
) -> None:
    """Run everything ``source`` gives on ``executor``; on any interruption stop the workers, mark the runs in
    flight interrupted and re-raise (finished runs are kept: ``--resume`` runs the rest). ``on_idle_slot`` is
    called once, the first time a worker of a pool stays free because the source has nothing to hand out (near
    the end of a suite a core idles: this process can do the end's work early)."""
    from ..tracking import call

    executor.ask = source.report if getattr(source, "prunes", False) else None  # asked by trials mid-run
    running: dict[str, Any] = {}
    announced: set[str] = set()  # runs the trackers heard start
    ending: dict[str, Outcome] = {}  # outcomes being stored, whose trackers have not yet been told
    warned: set[str] = set()  # each dataset warning is shown once, however many runs report it
    try:
        while True:
            while len(running) < executor.slots and (run := source.next()) is not None:
                # in flight before its row is written: Ctrl-C can land between the row's commit and the next
                # statement, and a run it leaves "running" in the store would never be marked interrupted
                running[run.id] = run
                store.start(run.as_record(), executor.describe())
                call(
                    "on_run_start",
                    out=out,
                    run={**run.as_record(), "environment": executor.describe(), "trackers": run.trackers},
                )
                announced.add(run.id)
                executor.submit(run)
                bar.update(started=1)
            if not running:
                break
            if on_idle_slot is not None and len(running) < executor.slots:
                on_idle_slot()
                on_idle_slot = None
            for run_id, outcome in executor.wait():
                # in flight until its outcome is stored: a Ctrl-C landing before that (its files being written)
                # must mark it interrupted below, not leave its row "running"
                run = running[run_id]
                outcome.environment = {**outcome.environment, **executor.describe()}
                if not executor.live_epochs:
                    for epoch, row in outcome.epochs:
                        call("on_epoch_end", run_id=run.id, epoch=epoch, metrics=row)
                # the trackers hear how a run ended once its outcome is stored, even when Ctrl-C lands between
                # the store's commit and the call: until the call starts, the outcome waits in ``ending``
                ending[run_id] = outcome
                store_outcome(store, out, run, outcome)
                tell_end(run_id, ending.pop(run_id))
                del running[run_id]
                counts[outcome.status] = counts.get(outcome.status, 0) + 1
                if outcome.pruned:
                    counts["pruned"] = counts.get("pruned", 0) + 1
                bar.update(status=outcome.status)
                for w in outcome.environment.get("data_warnings", []):
                    if w not in warned:
                        warned.add(w)
                        bar.log(f"warning: {w}")
                if outcome.status != "finished":
                    what = f"{run.dataset_label} / {run.label} / seed {run.config['seed']}"
                    bar.log(f"run {run.id} ({what}) failed: {(outcome.error or '').splitlines()[0]}")
                source.done(run, outcome)
    except BaseException:
        executor.cancel()
        for run in running.values():
            # only a row this attempt started: one not yet replaced (a finished run under --overwrite) stays, and
            # so does one whose outcome was stored just before the interrupt (its trackers hear how it ended, once)
            store.fail(run.id, "interrupted", 0.0, status="interrupted", only_running=True)
            if run.id not in announced:
                continue
            if store.status(run.id) == "interrupted":
                call("on_run_end", run_id=run.id, status="interrupted", metrics={})
            elif run.id in ending:
                tell_end(run.id, ending.pop(run.id))
        raise
    executor.close()
    if getattr(executor, "retried", 0):
        counts["retried"] = executor.retried
