"""The run-lifecycle hooks of the built-in trackers: each suite-enabled tracker gets the run's events."""

from mfm_bench import hookimpl

from . import mlflow_tracker, tensorboard_tracker

TRACKERS = {"tensorboard": tensorboard_tracker, "mlflow": mlflow_tracker}


@hookimpl
def on_run_start(run, out):
    for name in run.get("trackers", []):
        if name in TRACKERS:
            TRACKERS[name].start(run, out)


@hookimpl
def on_epoch_end(run_id, epoch, metrics):
    for tracker in TRACKERS.values():
        tracker.epoch(run_id, epoch, metrics)


@hookimpl
def on_run_end(run_id, status, metrics):
    for tracker in TRACKERS.values():
        tracker.end(run_id, status, metrics)
