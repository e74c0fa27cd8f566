"""Re-score saved models without retraining (``mfm-bench evaluate``): load each run's ``model.pt``, evaluate it
under conditions old or new, record the rows in the store as a re-evaluation with its own provenance, and write
per-sample predictions (run, id, target, prediction, condition) as Parquet.

The store keeps the runs' own metrics untouched; a re-evaluation adds rows to ``reevaluations`` (schema version 2,
see ``mfm_bench.results.migrate``) and the leaderboard shows them for conditions the runs never measured.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from .errors import MfmBenchError, MissingFileError, storage_error
from .results import DB_NAME, SCHEMA_VERSION, ResultStore

#: The splits every dataset has (the runs score ``test``).
SPLITS = ("train", "valid", "test")


class ModelFileError(MfmBenchError):
    """A run's ``model.pt`` is missing or does not fit the model its config builds."""


def locate(path: str | Path) -> tuple[Path, list[str] | None]:
    """(output folder, run ids or None for every finished run) from an output folder or a run folder."""
    path = Path(path)
    if (path / DB_NAME).exists():
        return path, None
    if (path / "config.json").exists() and (path.parent.parent / DB_NAME).exists():
        return path.parent.parent, [path.name]
    raise MissingFileError(
        f"{path} is neither an output folder (with {DB_NAME}) nor a run folder "
        "(OUT/runs/<id> with config.json); pass what `mfm-bench run --out` wrote"
    )


def model_path(run: dict[str, Any], out: Path) -> Path:
    """The run's ``model.pt``; :class:`ModelFileError` names the run when it is missing."""
    path = out / "runs" / run["id"] / "model.pt"
    if not path.exists():
        raise ModelFileError(
            f"run {run['id']} ({run['dataset']} / {run['label']} / seed {run['seed']}): no model "
            f"at {path}; re-create it with `mfm-bench run SUITE --out {out} --overwrite`"
        )
    return path


def load_model(run: dict[str, Any], out: Path, dataset: Any, reg: Any) -> Any:
    """The run's model with its saved weights; :class:`ModelFileError` names the run when they are missing or
    do not match the config."""
    import torch

    cfg, path = run["config"], model_path(run, out)
    torch.manual_seed(cfg["seed"])
    model = reg.build("model", cfg["model"]["name"], dataset.spec, **cfg["model"]["params"])
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: this run's problem
        first = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:200]  # torch's advice would unpickle
        raise ModelFileError(
            f"run {run['id']} ({run['label']}): {path} cannot be read as saved weights ({type(e).__name__}: "
            f"{first}); the file is damaged or not a model.pt of mfm-bench: re-create it with "
            f"`mfm-bench run SUITE --out {out} --overwrite`, or rerun the suite into a new --out"
        ) from None
    try:
        model.load_state_dict(state)
    except Exception as e:  # noqa: BLE001 - other weights: this run's problem
        first = str(e).strip().splitlines()[0][:300]
        raise ModelFileError(
            f"run {run['id']} ({run['label']}): {path} does not match the model its config "
            f"builds ({first}); the code or config changed since it was saved: rerun the suite "
            "into a new --out"
        ) from None
    return model


def reevaluate(
    path: str | Path, conditions: list[Any] | None = None, device: str = "cpu", split: str = "test", log: Any = print
) -> dict[str, Any]:
    """Re-evaluate the runs under ``path``; returns {"evaluation": id, "rows": n, "predictions": parquet path}."""
    from .evaluation import parse_conditions
    from .registry import get_registry
    from .runner import _dataset, environment
    from .training import resolve_device

    if split not in SPLITS:
        raise MfmBenchError(f"split {split!r} is not one of {', '.join(SPLITS)}; pass --split test (the default)")
    out, ids = locate(path)
    reg, dev = get_registry(), resolve_device(device)
    with ResultStore(out) as store:
        everything = store.runs()
        runs = [r for r in everything if r["status"] == "finished" and (ids is None or r["id"] in ids)]
        if not runs:
            raise MfmBenchError(_nothing_finished(out, ids, everything))
        eid = _evaluation_id(runs, conditions)
        rows, records, datasets = [], [], {}
        # every run's conditions (on its dataset) and model file are checked before any model is scored: a wrong
        # --condition or a missing model.pt stops at once, not after scoring the runs before it
        plan = []
        for run in runs:
            conds = parse_conditions(conditions or run["config"]["evaluate"]["conditions"])
            dataset, _ = _dataset(run["config"], datasets, reg, lambda msg: None)
            _check(run, dataset, conds, given=bool(conditions))
            model_path(run, out)
            plan.append((run, conds, dataset))
        for run, conds, dataset in plan:
            model = load_model(run, out, dataset, reg).to(dev)
            got = _score(model, dataset, conds, run, dev, split, records)
            rows += [(run["id"], *r) for r in got]
            log(
                f"re-evaluated {run['id']} ({run['dataset']} / {run['label']} / seed {run['seed']}): "
                f"{len(conds)} condition(s)"
            )
        prov = {
            "command": "evaluate",
            "conditions": conditions,
            "split": split,
            "runs": [r["id"] for r in runs],
            "store_schema": SCHEMA_VERSION,
            **environment(dev, {}),
        }
        # the predictions first: a folder that cannot take them (full, read-only) leaves no evaluation recorded
        # without its file
        parquet = out / "evaluations" / f"{eid}.parquet"
        try:
            write_predictions(parquet, records, eid)
        except OSError as e:
            raise storage_error(e, f"the predictions file {parquet}") from None
        store.record_evaluation(eid, prov, rows)
    return {"evaluation": eid, "rows": len(rows), "predictions": parquet, "out": out}


def _nothing_finished(out: Path, ids: list[str] | None, runs: list[dict[str, Any]]) -> str:
    """Why there is nothing to re-evaluate: the run is not finished, or the folder has no finished run."""
    if ids:
        got = next((r for r in runs if r["id"] == ids[0]), None)
        status = f"is {got['status']}" if got else "is not recorded"
        return (
            f"run {ids[0]} {status} in {out / DB_NAME}; only finished runs have models to re-evaluate "
            f"(finish it with `mfm-bench run SUITE --out {out} --resume`)"
        )
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    held = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs"
    return (
        f"{out / DB_NAME} holds no finished run to re-evaluate ({held}); finish the suite first "
        f"(`mfm-bench run SUITE --out {out} --resume`)"
    )


def _check(run: dict[str, Any], dataset: Any, conds: list[Any], given: bool) -> None:
    """Each condition's modalities are in the run's dataset, as one clear error naming the run."""
    for c in conds:
        try:
            c.check(dataset.spec)
        except ValueError as e:
            what = "--condition" if given else "the run's own condition"
            raise MfmBenchError(
                f"{what} for run {run['id']} ({run['dataset']} / {run['label']} / seed {run['seed']}): {e}; "
                "name a modality the dataset has"
            ) from None


def _evaluation_id(runs: list[dict[str, Any]], conditions: list[Any] | None) -> str:
    blob = json.dumps([[r["id"] for r in runs], conditions, time.time()], default=str)
    return "eval-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def _score(
    model: Any, dataset: Any, conds: list[Any], run: dict[str, Any], dev: Any, split: str, records: list[dict[str, Any]]
) -> list[tuple]:
    from .evaluation import evaluate

    def keep(cond: Any, p: Any) -> None:
        records.extend(per_sample(run, cond.name, p))

    for c in conds:
        c.check(dataset.spec)
    return evaluate(
        model, dataset, conds, device=dev, seed=run["config"]["seed"], split=split, probes=False, on_predictions=keep
    )


def per_sample(run: dict[str, Any], condition: str, p: Any) -> list[dict[str, Any]]:
    """One record per sample: scalars for one-value tasks, lists for several (logits, traits)."""
    pred, target = p.prediction.double(), p.target.double()
    pred = pred.reshape(len(pred), -1)
    target = target.reshape(len(target), -1)
    one = pred.shape[1] == 1 and target.shape[1] == 1
    out = []
    for i, sid in enumerate(p.ids):
        out.append(
            {
                "run_id": run["id"],
                "dataset": run["dataset"],
                "model": run["label"],
                "seed": run["seed"],
                "condition": condition,
                "id": str(sid),
                "target": float(target[i, 0]) if one else target[i].tolist(),
                "prediction": float(pred[i, 0]) if one else pred[i].tolist(),
            }
        )
    return out


def write_predictions(path: Path, records: list[dict[str, Any]], evaluation_id: str) -> Path:
    """Per-sample predictions as one Parquet file (pyarrow, which the datasets library already brings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .io import atomic_write

    table = pa.Table.from_pylist(records) if records else pa.table({"run_id": pa.array([], pa.string())})
    table = table.append_column("evaluation_id", pa.array([evaluation_id] * table.num_rows, pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write(path, sink.getvalue().to_pybytes())
    return path
