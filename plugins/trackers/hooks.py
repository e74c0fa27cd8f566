"""The run-lifecycle hooks of the built-in trackers: each suite-enabled tracker gets the run's events, each on its
own, so one that fails (a folder it cannot write, a missing package) warns once naming itself and the others
still record the run."""

from mfm_bench import hookimpl
from mfm_bench.tracking import warn_failure

from . import mlflow_tracker, tensorboard_tracker

TRACKERS = {"tensorboard": tensorboard_tracker, "mlflow": mlflow_tracker}


def _each(hook: str, run_id: str, method: str, *args, names=None, out=None) -> None:
    for name in TRACKERS if names is None else names:
        if name not in TRACKERS:
            continue  # a third-party tracker's name: its own plugin hears the run
        try:
            getattr(TRACKERS[name], method)(*args)
        except Exception as e:  # noqa: BLE001 - one tracker's failure is neither the run's nor another tracker's
            warn_failure(name, hook, e, run_id, out)


@hookimpl
def on_run_start(run, out):
    _each("on_run_start", run["id"], "start", run, out, names=run.get("trackers", []), out=out)


@hookimpl
def on_epoch_end(run_id, epoch, metrics):
    _each("on_epoch_end", run_id, "epoch", run_id, epoch, metrics)


@hookimpl
def on_run_end(run_id, status, metrics):
    _each("on_run_end", run_id, "end", run_id, status, metrics)
