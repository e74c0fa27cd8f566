"""Calling the run-lifecycle hooks (``on_run_start``, ``on_epoch_end``, ``on_run_end``) so that a tracker can never
fail or lose a run: each implementation is called on its own and an exception becomes a :class:`TrackerWarning`
naming the plugin, shown once per output folder however many runs and epochs repeat it. The SQLite store stays the
source of truth.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

#: Trackers built into mfm-bench, enabled by a suite's ``trackers:`` list.
BUILTIN_TRACKERS = ("tensorboard", "mlflow")

_outs: dict[str, str] = {}  # run id -> its output folder, from on_run_start (the other hooks are not given it)
_warned: set[tuple[str, str, str]] = set()  # (output folder, plugin, what failed): each is shown once


class TrackerWarning(UserWarning):
    """A tracker plugin raised; the run goes on. ``failure`` says which tracker failed in which hook, and how."""

    failure = ""


def warn_failure(plugin: str, hook: str, error: BaseException, run_id: str | None = None, out: Any = None) -> None:
    """Warn that tracker ``plugin`` failed in ``hook`` with ``error``, once per output folder: the same failure
    in every run of a suite (a missing package, a folder that cannot be written) is one warning, not one a run."""
    folder = str(out) if out is not None else _outs.get(run_id or "", "")
    what = f"{type(error).__name__}: {error}"
    key = (folder, plugin, f"{hook}: {what}")
    if key in _warned:
        return
    _warned.add(key)
    failure = f"tracker {plugin!r} failed in {hook}: {what}"
    w = TrackerWarning(
        f"{failure}; the runs go on and are recorded in the store ({Path(folder or '.') / 'results.sqlite'}); "
        "this warning is shown once"
    )
    w.failure = failure
    warnings.warn(w, stacklevel=3)


def call(hook: str, **kwargs: Any) -> None:
    """Call every implementation of ``hook`` with ``kwargs``; warn about (and survive) any that raises."""
    from .registry import get_registry

    run_id = kwargs.get("run_id") or (kwargs.get("run") or {}).get("id")
    if hook == "on_run_start" and run_id:
        _outs[run_id] = str(kwargs.get("out", ""))
    caller = getattr(get_registry().pm.hook, hook)
    try:
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as e:  # noqa: BLE001 - a tracker must never fail a run
                warn_failure(impl.plugin_name, hook, e, run_id)
    finally:
        if hook == "on_run_end":
            _outs.pop(run_id or "", None)


def flat_metrics(rows: list[tuple[str, str, str, float]]) -> dict[str, float]:
    """Metric rows -> ``{"<condition>/<metric>": value}`` of the test split and the cost rows."""
    return {f"{cond}/{m}": float(v) for cond, split, m, v in rows if split != "valid" and v == v}


def replay(out: str | Path, names: list[str], progress: bool = True) -> dict[str, int]:
    """Send the runs of output folder ``out`` that ended (finished or failed) to the trackers ``names``, as they
    would have heard them live: ``on_run_start`` with the run's configuration, ``on_epoch_end`` for each row of its
    ``history.json``, ``on_run_end`` with its status and test metrics. For runs that finished before the trackers
    were on (``--resume`` does not train them again) and for a merged folder (each shard tracked into its own).
    The built-in trackers replace a run's earlier record, so a run sent twice is held once. Third-party trackers
    implement the hooks themselves and hear every run sent, whatever ``names`` says. Returns counts: sent, and
    skipped (runs that did not end: running or interrupted)."""
    import json

    from tqdm.auto import tqdm

    from .leaderboard import no_store
    from .lock import OutputLock
    from .results import DB_NAME, ResultStore

    out = Path(out)
    if not (out / DB_NAME).exists():
        raise no_store(out)
    lock = OutputLock(out, print, way_on="then track it")  # the trackers write into OUT: not beside a run writing it
    lock.acquire()
    try:
        with ResultStore(out, readonly=True) as store:
            runs = store.runs()
            ended = [r for r in runs if r["status"] in ("finished", "failed")]
            for r in tqdm(ended, desc="tracking", unit="run", disable=None if progress else True):
                record = {k: r[k] for k in ("id", "suite", "label", "config", "environment")}
                call("on_run_start", out=out, run=record | {"dataset_label": r["dataset"], "trackers": list(names)})
                history = out / "runs" / r["id"] / "history.json"
                rows = json.loads(history.read_text()) if history.exists() else []
                for i, row in enumerate(rows, start=1):
                    call("on_epoch_end", run_id=r["id"], epoch=int(row.get("epoch", i)), metrics=row)
                metrics = [(m["condition"], m["split"], m["metric"], m["value"]) for m in store.metrics(r["id"])]
                call("on_run_end", run_id=r["id"], status=r["status"], metrics=flat_metrics(metrics))
    finally:
        lock.release()
    return {"sent": len(ended), "skipped": len(runs) - len(ended)}
