"""Grid expansion (dataset x model x seed), stable run ids, execution, resume.

A run id is a hash of the fully resolved run config (every default filled in), so a changed default is a new
run and ``--resume`` never mixes results. Each run writes, under ``OUT/runs/<id>/``, ``config.json``,
``history.json`` and ``model.pt``; its metrics go to the ResultStore in one transaction.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import OutputExistsError
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

    def as_record(self) -> dict[str, Any]:
        return {"id": self.id, "suite": self.suite, "label": self.label, "dataset_label": self.dataset_label,
                "config": self.config}


def run_id(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: train options that change how fast a run goes, not what it computes: left out of run ids
NOT_IN_ID = ("device", "threads")


def expand(suite: Suite, seeds: list[int] | None = None, device: str | None = None,
           threads: int | None = None) -> list[Run]:
    """The grid of runs, in dataset, model, seed order."""
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
                key = {**config, "train": {k: v for k, v in train.items() if k not in NOT_IN_ID}}
                runs.append(Run(run_id(key), suite.name, m.label, d.label, config))
    return runs


def environment(device: Any, packages: dict[str, str]) -> dict[str, Any]:
    import numpy
    import torch

    from . import __version__

    env = {
        "python": sys.version.split()[0], "platform": platform.platform(), "mfm_bench": __version__,
        "torch": torch.__version__, "numpy": numpy.__version__, "device": str(device),
        "plugins": packages, "git_commit": _git_commit(),
    }
    if getattr(device, "type", "") == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


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
            progress: Callable[..., Any] | None) -> str:
    """Train and evaluate one run; record it. Returns the final status."""
    from .registry import get_registry
    from .training import TrainConfig, Trainer

    reg = get_registry()
    cfg = run.config
    run_dir = out / "runs" / run.id
    atomic_write(run_dir / "config.json",
                 json.dumps({"id": run.id, "suite": run.suite, **cfg}, indent=2, sort_keys=True))
    trainer = Trainer(TrainConfig(**cfg["train"]), progress=progress)
    entries = {k: reg.get(k, cfg[k]["name"]) for k in ("dataset", "model")}
    packages = {f"{k}:{cfg[k]['name']}": f"{e.package} {e.version}".strip() for k, e in entries.items()}
    store.start(run.as_record(), environment(trainer.device, packages))
    t0 = time.perf_counter()
    try:
        model, result, rows = _train_and_evaluate(cfg, trainer, _dataset(cfg, datasets, reg), reg)
        _save_outputs(run_dir, model, result)
        store.finish(run.id, rows, time.perf_counter() - t0)
        return "finished"
    except (KeyboardInterrupt, _Terminated):
        store.fail(run.id, "interrupted", time.perf_counter() - t0, status="interrupted")
        raise
    except Exception as e:  # noqa: BLE001 - a failed run (TrainingError or any other) is recorded, the suite goes on
        tb = traceback.format_exc(limit=6)
        store.fail(run.id, f"{type(e).__name__}: {e}\n{tb}", time.perf_counter() - t0)
        return "failed"


def _dataset(cfg: dict[str, Any], datasets: dict[str, Any], reg: Any) -> Any:
    """The run's dataset, built once per suite run for each distinct dataset config (``datasets`` is the cache)."""
    key = json.dumps(cfg["dataset"], sort_keys=True)
    if key not in datasets:
        datasets[key] = reg.build("dataset", cfg["dataset"]["name"], **cfg["dataset"]["params"])
    return datasets[key]


def _train_and_evaluate(cfg: dict[str, Any], trainer: Any, dataset: Any, reg: Any) -> tuple[Any, Any, list[tuple]]:
    """Build the model, fit it, evaluate it under every condition: (model, fit result, metric rows)."""
    import torch

    from .evaluation import evaluate, parse_conditions

    conditions = parse_conditions(cfg["evaluate"]["conditions"])
    for c in conditions:
        c.check(dataset.spec)
    torch.manual_seed(cfg["seed"])
    model = reg.build("model", cfg["model"]["name"], dataset.spec, **cfg["model"]["params"])
    result = trainer.fit(model, dataset.split("train"), dataset.split("valid"), seed=cfg["seed"])
    rows = evaluate(model, dataset, conditions, device=trainer.device, batch_size=trainer.cfg.eval_batch_size,
                    seed=cfg["seed"], probes=cfg["evaluate"]["probes"], bootstrap=cfg["evaluate"].get("bootstrap", 0))
    rows += [
        ("train", "train", "params", float(result.params)),
        ("train", "train", "train_samples_per_sec", result.samples_per_sec),
        ("train", "train", "train_seconds", result.seconds),
        ("train", "train", "best_epoch", float(result.best_epoch)),
        ("train", "valid", "label_loss", result.best_valid_loss),
    ]
    return model, result, rows


def _save_outputs(run_dir: Path, model: Any, result: Any) -> None:
    import torch

    atomic_write(run_dir / "history.json", json.dumps(result.history, indent=1))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(run_dir / "model.pt", buf.getvalue())


def run_suite(suite: Suite, out: str | Path, resume: bool = False, overwrite: bool = False,
              seeds: list[int] | None = None, device: str | None = None, progress: bool = True,
              log: Callable[[str], None] = print, threads: int | None = None) -> dict[str, int]:
    """Run every run of the grid not yet finished (with ``resume``); returns counts by status."""
    from .training import resolve_device

    out = Path(out)
    resolve_device(device or suite.train["device"])  # a CUDA run on a machine without CUDA stops here, before any work
    if suite.fetch:  # download what the datasets lack, before any training
        from .data.fetch import prefetch_suite

        prefetch_suite(suite, log=log)
    runs = expand(suite, seeds, device, threads)
    with ResultStore(out) as store:
        todo = _todo(runs, store, out, resume, overwrite, log)
        counts = {"finished": 0, "failed": 0, "skipped": len(runs) - len(todo)}
        with _sigterm_as_interrupt():
            _execute_all(todo, suite.name, out, store, progress, counts)
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
                 counts: dict[str, int]) -> None:
    """Execute ``todo`` in order under one progress bar, counting statuses; a failed run is reported and skipped."""
    from tqdm.auto import tqdm

    datasets: dict[str, Any] = {}
    bar = tqdm(todo, desc=f"{name}", unit="run", disable=not progress)
    for run in bar:
        what = f"{run.dataset_label} / {run.label} / seed {run.config['seed']}"
        bar.set_postfix_str(what)
        status = execute(run, out, store, datasets, tqdm if progress else None)
        counts[status] += 1
        if status == "failed":
            err = store.conn.execute("SELECT error FROM runs WHERE id = ?", (run.id,)).fetchone()[0]
            bar.write(f"run {run.id} ({what}) failed: {err.splitlines()[0]}")
