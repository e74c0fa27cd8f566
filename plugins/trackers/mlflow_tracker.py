"""MLflow: a local file store in ``OUT/mlruns/`` (open it with ``mlflow ui --backend-store-uri OUT/mlruns``), one
experiment per suite and one MLflow run per mfm-bench run: params (dataset, model, seed, run id, and the resolved
settings as ``train.lr``, ``model.params.fusion``, ...), the epoch losses against the epoch, the test metrics at the
end, the status and, once finished, the run folder's files as artifacts (``model.pt``, ``config.json``,
``history.json``). A run that starts again (resumed after an interruption, or rerun with --overwrite) replaces its
earlier MLflow run, which is deleted (``mlflow gc`` purges it, ``restore_run`` brings it back), so each mfm-bench
run is one MLflow run. Needs the ``mlflow`` (or ``mlflow-skinny``) package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_runs: dict[str, tuple[Any, str, Path]] = {}  # mfm-bench run id -> (client, MLflow run id, output folder)
_TAG = "mfm_bench.run_id"


#: what MLflow allows in a metric name besides alphanumerics: colons too, except on Windows (file names)
_KEY_CHARS = "_-./ " + ("" if os.name == "nt" else ":")


def _key(name: str) -> str:
    """A metric name MLflow accepts, the store's own where it can be (``noise:audio:0.5/mae``, as in TensorBoard
    and the leaderboard); any other character becomes ``_``."""
    return "".join(c if c.isalnum() or c in _KEY_CHARS else "_" for c in name)


_MAX_VALUE = 6000  # MLflow's longest param value


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    """``{"train": {"lr": 0.001}}`` -> ``{"train.lr": 0.001}``; lists stay whole (``evaluate.conditions``)."""
    import json

    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}"))
        return out
    if isinstance(value, (list, tuple)):
        return {prefix: json.dumps(value)}
    return {} if value is None else {prefix: value}


def start(run: dict[str, Any], out: Path) -> None:
    try:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
    except ImportError as e:
        raise ImportError(
            f"the mlflow tracker needs the mlflow package ({e}); "
            "pip install -e '.[trackers]' or drop it from the suite's trackers"
        ) from None
    # MLflow 3 keeps the file store but asks for this opt-in; a local folder needs no database or server
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    store = Path(out) / "mlruns"
    try:
        client = MlflowClient(tracking_uri=store.resolve().as_uri())
        exp = client.get_experiment_by_name(run["suite"])
        exp_id = exp.experiment_id if exp else client.create_experiment(run["suite"])
        # an earlier attempt of this run (interrupted, or replaced by --overwrite): one MLflow run per run
        for old in client.search_runs([exp_id], filter_string=f"tags.`{_TAG}` = '{run['id']}'"):
            client.delete_run(old.info.run_id)
        ml = client.create_run(
            exp_id,
            run_name=f"{run['label']} seed {run['config']['seed']}",
            tags={_TAG: run["id"], "mfm_bench.dataset": run["dataset_label"]},
        )
    except OSError as e:
        raise OSError(f"cannot write its file store {store} ({e.strerror or e})") from None
    params = {
        "dataset": run["dataset_label"],
        "model": run["label"],
        "seed": run["config"]["seed"],
        "run_id": run["id"],
    }
    for part in ("dataset", "model", "train", "evaluate"):  # the resolved settings, to compare runs by them
        params.update(_flat(run["config"].get(part), part))
    entries = [Param(_key(k), str(v)[:_MAX_VALUE]) for k, v in params.items()]
    for i in range(0, len(entries), 100):  # MLflow takes at most 100 params a call
        client.log_batch(ml.info.run_id, params=entries[i : i + 100])
    _runs[run["id"]] = (client, ml.info.run_id, Path(out))


def epoch(run_id: str, epoch: int, metrics: dict[str, float]) -> None:
    if run_id not in _runs:
        return
    client, ml, _ = _runs[run_id]
    for key, value in metrics.items():
        if key != "epoch" and isinstance(value, (int, float)):
            client.log_metric(ml, _key(f"epoch/{key}"), float(value), step=epoch)


def end(run_id: str, status: str, metrics: dict[str, float]) -> None:
    if run_id not in _runs:
        return
    client, ml, out = _runs.pop(run_id)
    logged = False
    try:
        for key, value in metrics.items():
            client.log_metric(ml, _key(key), float(value))
        folder = out / "runs" / run_id
        if status == "finished" and folder.is_dir():  # the trained model, its config and its history
            client.log_artifacts(ml, str(folder))
        logged = True
    finally:  # a run whose metrics or model did not all reach MLflow (Ctrl-C, a full disk) is not shown FINISHED
        state = {"finished": "FINISHED", "failed": "FAILED"}.get(status, "KILLED") if logged else "KILLED"
        client.set_terminated(ml, state)
