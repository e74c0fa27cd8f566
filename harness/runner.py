"""Grid expansion (dataset x model x seed), stable run ids, execution, resume.

A run id is a hash of the fully resolved run config (every default filled in), so a changed default is a new
run and ``--resume`` never mixes results. Each run writes, under ``OUT/runs/<id>/``, ``config.json``,
``history.json`` and ``model.pt``; its metrics go to the ResultStore in one transaction. A run that did not
train (``mfm_bench.checks``) fails; the folder is locked while a suite runs (``mfm_bench.lock``) and belongs to
one suite and configuration (``mfm_bench.outdir``).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from .datacheck import check_data
from .errors import MfmBenchError, OutputExistsError, is_disk_full
from .io import atomic_write
from .results import ResultStore
from .suite import Suite


@dataclass
class Run:
    id: str
    suite: str
    label: str
    dataset_label: str
    config: dict[str, Any]
    trackers: list[str] = field(default_factory=list)  # enabled by the suite; not part of the run id

    def as_record(self) -> dict[str, Any]:
        return {"id": self.id, "suite": self.suite, "label": self.label, "dataset_label": self.dataset_label,
                "config": self.config}


def run_id(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: train options that change how fast a run goes, not what it computes: left out of run ids
NOT_IN_ID = ("device", "threads")


def expand(suite: Suite, seeds: list[int] | None = None, device: str | None = None,
           threads: int | None = None, limit: int | None = None) -> list[Run]:
    """The grid of runs, in dataset, model, seed order. ``limit`` (a smoke test on a seeded subset of each split)
    enters the config, hence the run id, only when set."""
    train = dict(suite.train)
    if device:
        train["device"] = device
    if threads is not None:
        train["threads"] = threads
    runs = []
    for d in suite.datasets:
        for m in suite.models:
            for seed in seeds if seeds is not None else suite.seeds:
                config = {
                    "dataset": {"name": d.name, "params": d.params},
                    "model": {"name": m.name, "label": m.label, "params": m.params},
                    "seed": seed,
                    "train": train,
                    "evaluate": {"conditions": [c.name for c in suite.conditions], "probes": suite.probes,
                                 "bootstrap": suite.bootstrap},
                }
                if limit:
                    config["limit"] = limit
                key = {**config, "train": {k: v for k, v in train.items() if k not in NOT_IN_ID}}
                runs.append(Run(run_id(key), suite.name, m.label, d.label, config, list(getattr(suite, "trackers", []))))
    return runs


def environment(device: Any, packages: dict[str, str], settings: dict[str, Any] | None = None,
                deterministic: bool = False) -> dict[str, Any]:
    """Versions, git commit, device and the execution settings (threads, deterministic) of a run."""
    import numpy
    import torch

    from . import __version__

    env = {
        "python": sys.version.split()[0], "platform": platform.platform(), "mfm_bench": __version__,
        "torch": torch.__version__, "numpy": numpy.__version__, "device": str(device),
        "plugins": packages, "git_commit": _git_commit(), **(settings or {}),
    }
    if getattr(device, "type", "") == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    from .provenance import provenance

    return env | provenance(device, deterministic)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the current run is marked interrupted cleanly."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM inside the block raises KeyboardInterrupt, after the current run is marked interrupted."""
    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    except _Terminated:
        raise KeyboardInterrupt from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def execute(run: Run, out: Path, store: ResultStore, datasets: dict[str, Any],
            progress: Callable[..., Any] | None, log: Callable[[str], None] = print,
            deterministic: bool = False) -> str:
    """Train and evaluate one run; record it. Returns the final status.

    A run whose training diverged or whose test metrics are not finite fails (:mod:`mfm_bench.checks`), with
    its loss history in ``history.json``; a dataset with non-finite labels fails every run on it."""
    from .outdir import settings
    from .provenance import data_fingerprint, set_deterministic
    from .tracking import call, flat_metrics

    from .registry import get_registry
    from .training import TrainConfig, Trainer

    reg = get_registry()
    cfg = run.config
    run_dir = out / "runs" / run.id
    atomic_write(run_dir / "config.json",
                 json.dumps({"id": run.id, "suite": run.suite, **cfg}, indent=2, sort_keys=True))
    trainer = Trainer(TrainConfig(**cfg["train"]), progress=progress,
                      on_epoch=lambda epoch, row: call("on_epoch_end", run_id=run.id, epoch=epoch, metrics=row))
    entries = {k: reg.get(k, cfg[k]["name"]) for k in ("dataset", "model")}
    packages = {f"{k}:{cfg[k]['name']}": f"{e.package} {e.version}".strip() for k, e in entries.items()}
    set_deterministic(deterministic)
    env = environment(trainer.device, packages, settings(cfg["train"]), deterministic)
    store.start(run.as_record(), env)
    call("on_run_start", run={**run.as_record(), "environment": env, "trackers": run.trackers}, out=out)
    t0 = time.perf_counter()
    try:
        dataset, warnings = _dataset(cfg, datasets, reg, log)
        if warnings:
            store.note(run.id, {**env, "data_warnings": warnings})
        store.add_environment(run.id, {"data_fingerprint": data_fingerprint(dataset)})
        model, _, rows = _train_and_evaluate(cfg, trainer, dataset, reg, run_dir)
        _save_outputs(run_dir, model)
        rows += _model_artifacts(model, dataset, run_dir, trainer.device)
        store.finish(run.id, rows, time.perf_counter() - t0)
        call("on_run_end", run_id=run.id, status="finished", metrics=flat_metrics(rows))
        return "finished"
    except (KeyboardInterrupt, _Terminated):
        store.fail(run.id, "interrupted", time.perf_counter() - t0, status="interrupted")
        call("on_run_end", run_id=run.id, status="interrupted", metrics={})
        raise
    except Exception as e:  # noqa: BLE001 - a failed run (TrainingError or any other) is recorded, the suite goes on
        if is_disk_full(e):  # every later run would fail the same way
            raise
        tb = traceback.format_exc(limit=6)
        store.fail(run.id, f"{type(e).__name__}: {e}\n{tb}", time.perf_counter() - t0)
        call("on_run_end", run_id=run.id, status="failed", metrics={})
        return "failed"


def _dataset(cfg: dict[str, Any], datasets: dict[str, Any], reg: Any,
             log: Callable[[str], None]) -> tuple[Any, list[str]]:
    """The run's dataset and its warnings, built and checked once per suite run for each distinct dataset config
    (``datasets`` is the cache; a dataset that fails its checks fails again, without rebuilding)."""
    from .checks import check_dataset

    key = json.dumps(cfg["dataset"], sort_keys=True)
    if key not in datasets:
        try:
            ds = reg.build("dataset", cfg["dataset"]["name"], **cfg["dataset"]["params"])
            datasets[key] = (ds, check_dataset(cfg["dataset"]["name"], ds))
        except Exception as e:  # noqa: BLE001 - remembered, re-raised for every run on this dataset
            datasets[key] = e
        if isinstance(datasets[key], tuple):
            for w in datasets[key][1]:
                log(f"warning: {w}")
    if isinstance(datasets[key], Exception):
        raise datasets[key]
    ds, warnings = datasets[key]
    if cfg.get("limit"):  # --limit: a seeded subset of each split (the seed of the data, not of the run)
        from .provenance import Limited

        ds = datasets.setdefault(f"{key} limit {cfg['limit']}", Limited(ds, cfg["limit"]))
    return ds, warnings


def _train_and_evaluate(cfg: dict[str, Any], trainer: Any, dataset: Any, reg: Any,
                        run_dir: Path) -> tuple[Any, Any, list[tuple]]:
    """Build the model, fit it, check it trained, evaluate it under every condition and check the metrics are
    finite: (model, fit result, metric rows)."""
    import torch

    from .checks import check_metrics, check_training
    from .evaluation import evaluate, parse_conditions

    conditions = parse_conditions(cfg["evaluate"]["conditions"])
    for c in conditions:
        c.check(dataset.spec)
    torch.manual_seed(cfg["seed"])
    model = reg.build("model", cfg["model"]["name"], dataset.spec, **cfg["model"]["params"])
    from .provenance import cost_rows

    initial = _initial_loss(trainer, model, dataset.split("valid"))
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    result = trainer.fit(model, dataset.split("train"), dataset.split("valid"), seed=cfg["seed"])
    atomic_write(run_dir / "history.json", json.dumps(result.history, indent=1))
    check_training(result, initial)
    t0 = time.perf_counter()
    rows = evaluate(model, dataset, conditions, device=trainer.device, batch_size=trainer.cfg.eval_batch_size,
                    seed=cfg["seed"], probes=cfg["evaluate"]["probes"], bootstrap=cfg["evaluate"].get("bootstrap", 0))
    rows += cost_rows(time.perf_counter() - t0, len(dataset.split("test")) * len(conditions), trainer.device)
    rows += [
        ("train", "train", "params", float(result.params)),
        ("train", "train", "train_samples_per_sec", result.samples_per_sec),
        ("train", "train", "train_seconds", result.seconds),
        ("train", "train", "best_epoch", float(result.best_epoch)),
        ("train", "valid", "label_loss", result.best_valid_loss),
    ]
    check_metrics(rows)
    return model, result, rows


def _initial_loss(trainer: Any, model: Any, valid: Any) -> float:
    """The validation loss of the untrained weights (the one ``select_on`` picks checkpoints by: label, or the
    total): a run must beat it to count as trained."""
    import math

    model.to(trainer.device)
    value = trainer.selection_loss(model, trainer.evaluate_losses(model, valid))
    return float(value) if math.isfinite(value) else math.inf


def _model_artifacts(model: Any, dataset: Any, run_dir: Path, device: Any) -> list[tuple]:
    """A model may write files of its own into its run folder after evaluation (``model.write_artifacts(dataset,
    run_dir, device)``, e.g. MFM's generation grid) and return metric rows (condition, split, metric, value)."""
    write = getattr(model, "write_artifacts", None)
    return list(write(dataset, run_dir, device) or []) if callable(write) else []


def _save_outputs(run_dir: Path, model: Any) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(run_dir / "model.pt", buf.getvalue())


def run_suite(suite: Suite, out: str | Path, resume: bool = False, overwrite: bool = False,
              seeds: list[int] | None = None, device: str | None = None, progress: bool = True,
              log: Callable[[str], None] = print, threads: int | None = None,
              allow_mixed: bool = False, deterministic: bool = False, limit: int | None = None) -> dict[str, int]:
    """Run every run of the grid not yet finished (with ``resume``); returns counts by status.

    Holds the lock on ``out`` throughout (:mod:`mfm_bench.lock`); refuses a folder of another suite or
    configuration, and with ``resume`` finished runs of other execution settings unless ``allow_mixed``
    (:mod:`mfm_bench.outdir`). ``deterministic`` turns on torch's deterministic algorithms (recorded); ``limit``
    runs a seeded subset of each split."""
    import torch

    from .lock import OutputLock
    from .outdir import check_settings, claim, fingerprint, settings
    from .training import resolve_device

    out = Path(out)
    resolve_device(device or suite.train["device"])  # a CUDA run on a machine without CUDA stops here, before any work
    fetching = suite if suite.fetch else replace(suite, datasets=[d for d in suite.datasets if d.params.get("fetch")])
    if fetching.datasets:  # download what the datasets lack, before any training (offline: one message, no run)
        from .data.fetch import prefetch_suite

        prefetch_suite(fetching, log=log)
    check_data(suite)  # every dataset finds its files, or one message lists those that do not, before any work
    runs = expand(suite, seeds, device, threads, limit)
    if not runs:
        raise MfmBenchError("the grid is empty: give at least one seed")
    threads_before = torch.get_num_threads()
    with OutputLock(out, log), ResultStore(out) as store:
        claim(store, out, fingerprint(suite.name, [r.config for r in runs]), overwrite)
        store.set_meta("formats", list(suite.formats))
        store.set_meta("reference", suite.reference)  # `mfm-bench leaderboard` pairs against it too
        todo = _todo(runs, store, out, resume, overwrite, log)
        check_settings(store, {r.id for r in todo}, settings(runs[0].config["train"]), out, allow_mixed)
        counts = {"finished": 0, "failed": 0, "skipped": len(runs) - len(todo)}
        try:
            with _sigterm_as_interrupt():
                _execute_all(todo, suite.name, out, store, progress, counts, log, deterministic)
        finally:
            torch.set_num_threads(threads_before)  # --threads applies to this suite, not to the caller's process
    return counts


def _todo(runs: list[Run], store: ResultStore, out: Path, resume: bool, overwrite: bool,
          log: Callable[[str], None]) -> list[Run]:
    """The runs to execute: all with ``overwrite``, the unfinished ones with ``resume``; else finished runs stop us."""
    done = {r.id for r in runs if store.status(r.id) == "finished"}
    if done and not (resume or overwrite):
        raise OutputExistsError(
            f"{out} already holds {len(done)} finished run(s) of this suite; "
            "pass --resume to run only the rest, --overwrite to run them again, or choose another --out"
        )
    todo = [r for r in runs if overwrite or r.id not in done]
    if len(todo) < len(runs):
        log(f"resuming: {len(runs) - len(todo)} of {len(runs)} runs already finished, {len(todo)} to go")
    return todo


def _execute_all(todo: list[Run], name: str, out: Path, store: ResultStore, progress: bool,
                 counts: dict[str, int], log: Callable[[str], None] = print, deterministic: bool = False) -> None:
    """Execute ``todo`` in order under one progress bar, counting statuses; a failed run is reported and skipped."""
    from tqdm.auto import tqdm

    datasets: dict[str, Any] = {}
    # disable=None: tqdm's own check, so no bars flood a log file or a pipe (stderr that is not a terminal)
    bar = tqdm(todo, desc=f"{name}", unit="run", disable=None if progress else True)
    for run in bar:
        what = f"{run.dataset_label} / {run.label} / seed {run.config['seed']}"
        bar.set_postfix_str(what)
        status = execute(run, out, store, datasets, partial(tqdm, disable=None) if progress else None,
                         bar.write if progress else log, deterministic)
        counts[status] += 1
        if status == "failed":
            err = store.conn.execute("SELECT error FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
            bar.write(f"run {run.id} ({what}) failed: {err.splitlines()[0]}")
