"""Built-in experiment trackers, enabled by a suite's ``trackers: [tensorboard, mlflow]`` (optional extras:
``pip install -e '.[trackers]'``). Both write local files under the output folder: TensorBoard event files in
``OUT/tensorboard/<run id>/``, an MLflow file store in ``OUT/mlruns/``. They implement the run-lifecycle hooks
(module ``hooks``, the entry point); ``mfm_bench.tracking`` calls each on its own, so a tracker that fails warns and
never fails the run."""
