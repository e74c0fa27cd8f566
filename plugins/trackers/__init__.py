"""Built-in experiment trackers, enabled by a suite's ``trackers: [tensorboard, mlflow]`` (optional extras:
``pip install -e '.[trackers]'``). Both write local files under the output folder: TensorBoard event files in
``OUT/tensorboard/<run id>/``, an MLflow file store in ``OUT/mlruns/``. They implement the run-lifecycle hooks;
``mfm_bench.tracking`` calls each on its own, so a tracker that fails warns and never fails the run."""

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
