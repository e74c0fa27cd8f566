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
import sys
import tempfile
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
from .signals import sigterm_handler
from .suite import Suite
from .trainconfig import identity


@dataclass
class Run:
    id: str
    suite: str
    label: str
    dataset_label: str
    config: dict[str, Any]
    trackers: list[str] = field(default_factory=list)  # enabled by the suite; not part of the run id
    deterministic: bool = False  # --deterministic: recorded in the environment; not part of the run id

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite,
            "label": self.label,
            "dataset_label": self.dataset_label,
            "config": self.config,
        }


def run_id(config: dict[str, Any]) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: train options that change how fast a run goes, not what it computes: left out of run ids
NOT_IN_ID = ("device", "threads")


def expand(
    suite: Suite,
    seeds: list[int] | None = None,
    device: str | None = None,
    threads: int | None = None,
    limit: int | None = None,
) -> list[Run]:
    """The grid of runs, in dataset, model, seed order. ``limit`` (a smoke test on a seeded subset of each split)
    enters the config, hence the run id, only when set."""
    train = expand_train(suite, device, threads)
    runs = []
    for d in suite.datasets:
        for m in suite.models:
            if m.search is not None:  # searched models: trials, then the chosen config (mfm_bench.search_run)
                continue
            for seed in seeds if seeds is not None else suite.seeds:
                runs.append(
                    make_run(
                        suite.name,
                        m.label,
                        d.label,
                        run_config(suite, d, m.name, m.label, m.params, seed, train, limit),
                        list(getattr(suite, "trackers", [])),
                    )
                )
    return runs


def run_config(
    suite: Suite,
    d: Any,
    model: str,
    label: str,
    params: dict[str, Any],
    seed: int,
    train: dict[str, Any],
    limit: int | None = None,
) -> dict[str, Any]:
    """The config of one run: dataset ``d`` (a PluginRef), a model, a seed, resolved train options, and ``limit``
    (``--limit``) only when set."""
    config = {
        "dataset": {"name": d.name, "params": d.params},
        "model": {"name": model, "label": label, "params": params},
        "seed": seed,
        "train": train,
        "evaluate": {
            "conditions": [c.name for c in suite.conditions],
            "probes": suite.probes,
            "bootstrap": getattr(suite, "bootstrap", 0),
        },
    }
    if limit:
        config["limit"] = limit
    return config


def make_run(
    suite: str, label: str, dataset_label: str, config: dict[str, Any], trackers: list[str] | None = None
) -> Run:
    """A run of ``config``; its id leaves out how fast it runs (:data:`NOT_IN_ID`), train options at the value they
    had before they were options (:func:`mfm_bench.trainconfig.identity`) and search bookkeeping
    (``config["search"]``: a trial and a retrain of the same configuration and seed are one run)."""
    key = {k: v for k, v in config.items() if k != "search"}
    key["train"] = identity({k: v for k, v in config["train"].items() if k not in NOT_IN_ID})
    return Run(run_id(key), suite, label, dataset_label, config, list(trackers or []))


def environment(
    device: Any, packages: dict[str, str], settings: dict[str, Any] | None = None, deterministic: bool = False
) -> dict[str, Any]:
    """Versions, git commit, device and the execution settings (threads, deterministic) of a run."""
    import numpy
    import torch

    from . import __version__

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mfm_bench": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "device": str(device),
        "plugins": packages,
        **(settings or {}),
    }
    if getattr(device, "type", "") == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    from . import kernels

    # the CPU fast path's float32 products (float64, CUDA, autocast: F.linear); on and off round differently
    on, why = kernels.onednn_choice()
    if kernels._OP is not None:
        env["onednn_linear"] = f"on ({why})"
    elif on:
        env["onednn_linear"] = f"unavailable in this torch build ({why})"
    else:
        env["onednn_linear"] = f"off ({why})"  # F.linear throughout
    from .provenance import provenance

    return env | provenance(device, deterministic)


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so the current run is marked interrupted cleanly."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a batch scheduler), raised as an interrupt: everything that cleans up after
    Ctrl-C cleans up after it too, and ``mfm-bench`` exits with ``exit_code``, 128 + SIGTERM (143), not Ctrl-C's
    130, so a scheduler or a script can tell a kill from a Ctrl-C."""

    exit_code = 128 + signal.SIGTERM


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM inside the block raises :class:`Terminated` (a KeyboardInterrupt) out of it. Inside, it travels as a
    private BaseException, which no ``except Exception`` or ``except KeyboardInterrupt`` of a plugin or library
    swallows, and the runs in flight are marked interrupted on its way out. Blocks nest (``mfm-bench run`` holds
    one around the whole command, so a SIGTERM while it checks data or writes the leaderboard is handled too);
    outside the main thread it does nothing."""

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminated()

    try:
        with sigterm_handler(on_term):
            yield
    except _Terminated:
        raise Terminated from None


@contextmanager
def _sigterm_default() -> Iterator[None]:
    """SIGTERM's default action inside the block (in the main thread), for processes forked there: a worker that
    inherited the command's handler would print a traceback each time the pool stops it. A SIGTERM in the block
    ends this process at once, as before any handler was set (nothing of the output folder is written yet)."""
    with sigterm_handler(signal.SIG_DFL):
        yield


def perform(
    run: Run,
    out: Path | None,
    datasets: dict[str, Any],
    progress: Callable[..., Any] | None,
    on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
    ask: Callable[[int, float], bool] | None = None,
) -> Any:
    """Train and evaluate one run, in whichever process an executor chose; never touches the result store.

    Writes ``config.json``, ``history.json``, ``model.pt`` and the model's own artifacts under
    ``out/runs/<id>/``; with ``out`` None (a worker without the output folder) it writes them into a temporary
    folder and returns them in the outcome's ``files``. A run whose training diverged or whose test metrics are
    not finite fails (:mod:`mfm_bench.checks`), with its loss history kept; a dataset's warnings go into the
    outcome's ``environment["data_warnings"]``, its fingerprint in ``environment["data_fingerprint"]``; cost rows
    are among the metric rows and each epoch's history row is in the outcome's ``epochs``. Trackers and the store
    are the main process's (:func:`mfm_bench.executors.drive`); ``on_epoch(epoch, row)``, when given, is called
    after each epoch as well (the in-process executor passes the trackers' ``on_epoch_end``). ``ask(epoch,
    value)``, when given, is the main process's search pruner: a search trial with a pruner reports its validation
    value after each epoch and stops when the answer is True (without ``ask`` it is never pruned). A failure is an
    outcome; KeyboardInterrupt and a full disk propagate."""
    if out is not None:
        return _perform_in(run, out / "runs" / run.id, datasets, progress, on_epoch, ask)
    with tempfile.TemporaryDirectory(prefix="mfm-bench-run-") as tmp:
        outcome = _perform_in(run, Path(tmp), datasets, progress, on_epoch, ask)
        outcome.files = {
            p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()
        }
    return outcome


def _perform_in(
    run: Run,
    run_dir: Path,
    datasets: dict[str, Any],
    progress: Callable[..., Any] | None,
    live_epochs: Callable[[int, dict[str, Any]], None] | None,
    ask: Callable[[int, float], bool] | None = None,
) -> Any:
    from .executors import Outcome
    from .outdir import settings
    from .provenance import data_fingerprint, set_deterministic
    from .registry import get_registry
    from .training import TrainConfig, Trainer

    cfg = run.config
    # first, so that a run killed mid-way still says what it was
    atomic_write(
        run_dir / "config.json", json.dumps({"id": run.id, "suite": run.suite, **cfg}, indent=2, sort_keys=True)
    )
    env: dict[str, Any] = {}
    epochs: list[tuple[int, dict[str, Any]]] = []

    def on_epoch(epoch: int, row: dict[str, Any]) -> None:
        epochs.append((epoch, row))
        if live_epochs is not None:
            live_epochs(epoch, row)

    t0 = time.perf_counter()
    try:
        reg = get_registry()
        trainer = Trainer(TrainConfig(**cfg["train"]), progress=progress, on_epoch=on_epoch)
        entries = {k: reg.get(k, cfg[k]["name"]) for k in ("dataset", "model")}
        packages = {f"{k}:{cfg[k]['name']}": f"{e.package} {e.version}".strip() for k, e in entries.items()}
        set_deterministic(run.deterministic)
        asked = settings(cfg["train"])
        env = environment(trainer.device, packages, asked, run.deterministic)
        env["threads_asked"] = asked["threads"]
        dataset, warnings = _dataset(cfg, datasets, reg)
        if warnings:
            env["data_warnings"] = list(warnings)
        env["data_fingerprint"] = data_fingerprint(dataset)
        try:
            model, _, rows = _train_and_evaluate(cfg, trainer, dataset, reg, run_dir, ask)
        finally:
            env["threads"] = trainer.threads or env["threads"]  # the count training used, failed or not
        _save_outputs(run_dir, model)
        rows += _model_artifacts(model, dataset, run_dir, trainer.device)
        return Outcome("finished", rows, env, time.perf_counter() - t0, epochs=epochs)
    except (KeyboardInterrupt, _Terminated):
        raise
    except Exception as e:  # noqa: BLE001 - a failed run (TrainingError or any other) is recorded, the suite goes on
        if is_disk_full(e):  # every later run would fail the same way
            raise
        tb = traceback.format_exc(limit=6)
        return Outcome("failed", [], env, time.perf_counter() - t0, f"{type(e).__name__}: {e}\n{tb}", epochs=epochs)


def _dataset(
    cfg: dict[str, Any], datasets: dict[str, Any], reg: Any, log: Callable[[str], None] | None = None
) -> tuple[Any, list[str]]:
    """The run's dataset and its warnings, built and checked once per suite run for each distinct dataset config
    (``datasets`` is the cache; a dataset that fails its checks fails again, without rebuilding). ``log``, when
    given, hears the warnings once, when the dataset is built (runs return them in their outcome instead)."""
    from .checks import check_dataset

    key = json.dumps(cfg["dataset"], sort_keys=True)
    if key not in datasets:
        try:
            ds = reg.build("dataset", cfg["dataset"]["name"], **cfg["dataset"]["params"])
            datasets[key] = (ds, check_dataset(cfg["dataset"]["name"], ds))
        except Exception as e:  # noqa: BLE001 - remembered, re-raised for every run on this dataset
            datasets[key] = e
        if log is not None and isinstance(datasets[key], tuple):
            for w in datasets[key][1]:
                log(f"warning: {w}")
    if isinstance(datasets[key], Exception):
        raise datasets[key]
    ds, warnings = datasets[key]
    if cfg.get("limit"):  # --limit: a seeded subset of each split (the seed of the data, not of the run)
        from .provenance import Limited

        sizes = limit_covers(ds, cfg["limit"])
        if sizes:  # kept in the run's record and shown on the leaderboard, with the data's other warnings
            warnings = [
                *warnings,
                f"--limit {cfg['limit']} covered every split of dataset {cfg['dataset']['name']!r} ({sizes}): "
                "these runs used all of its data, as full runs do, but are recorded as limited runs",
            ]
        ds = datasets.setdefault(f"{key} limit {cfg['limit']}", Limited(ds, cfg["limit"]))
    return ds, warnings


def limit_covers(dataset: Any, limit: int) -> str | None:
    """``"train 64, valid 32, test 32 samples"`` when ``--limit limit`` cuts none of the dataset's splits (each
    has ``limit`` samples or fewer), else None."""
    from .checks import SPLITS

    sizes = {s: len(dataset.split(s)) for s in SPLITS}
    if max(sizes.values()) > limit:
        return None
    return ", ".join(f"{s} {n}" for s, n in sizes.items()) + " samples"


def _check_limit(todo: list[Run], log: Callable[[str], None]) -> dict[str, Any]:
    """``--limit N`` that covers every split of a dataset: one warning line per dataset, before any run, since
    the limit then cuts nothing but still gives the runs their own ids and a smoke-test leaderboard. Builds each
    distinct dataset of ``todo`` once and returns that cache, which the in-process executor reuses; a dataset
    that cannot be built says so in its runs, as without the check."""
    from .registry import get_registry

    datasets: dict[str, Any] = {}
    reg = get_registry()
    seen = set()
    for run in todo:
        cfg = run.config
        key = json.dumps([cfg["dataset"], run.dataset_label, cfg.get("limit")], sort_keys=True)
        if not cfg.get("limit") or key in seen:
            continue
        seen.add(key)
        try:
            full, _ = _dataset({**cfg, "limit": None}, datasets, reg)
            sizes = limit_covers(full, cfg["limit"])
        except Exception:  # noqa: BLE001 - the runs on it fail with this error, as they would without the check
            continue
        if sizes:
            log(
                f"warning: --limit {cfg['limit']} covers every split of dataset {run.dataset_label!r} ({sizes}): "
                "its runs use all of its data, as full runs do, yet are recorded as limited runs (run ids of "
                "their own, a leaderboard titled smoke test); drop --limit to record full runs"
            )
    return datasets


def _train_and_evaluate(
    cfg: dict[str, Any], trainer: Any, dataset: Any, reg: Any, run_dir: Path, ask: Any = None
) -> tuple[Any, Any, list[tuple]]:
    """Build the model, fit it, check it trained, evaluate it under every condition and check the metrics are
    finite: (model, fit result, metric rows). A pruned search trial is evaluated like any run, on the best weights
    it reached, with a ``pruned_epoch`` row."""
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
    stop = _pruning(cfg, trainer, dataset, conditions[:1], ask)
    result = trainer.fit(model, dataset.split("train"), dataset.split("valid"), seed=cfg["seed"], stop=stop)
    atomic_write(run_dir / "history.json", json.dumps(result.history, indent=1))
    # a pruned trial was stopped for lagging: "did not improve on the initial weights" is the pruner's reason,
    # not a failure (a loss never finite still is)
    check_training(result, initial if not result.pruned_epoch else float("inf"))
    t0 = time.perf_counter()
    rows = evaluate(
        model,
        dataset,
        conditions,
        device=trainer.device,
        batch_size=trainer.cfg.eval_batch_size,
        seed=cfg["seed"],
        probes=cfg["evaluate"]["probes"],
        bootstrap=cfg["evaluate"].get("bootstrap", 0),
    )
    rows += cost_rows(time.perf_counter() - t0, len(dataset.split("test")) * len(conditions), trainer.device)
    if cfg.get("search"):  # a searched model's runs: the validation metrics its selection uses
        rows += _search_rows(model, dataset, conditions[:1], trainer, cfg["seed"])
    rows += [
        ("train", "train", "params", float(result.params)),
        ("train", "train", "train_samples_per_sec", result.samples_per_sec),
        ("train", "train", "train_seconds", result.seconds),
        ("train", "train", "best_epoch", float(result.best_epoch)),
        ("train", "valid", "label_loss", result.best_valid_loss),
    ]
    if result.pruned_epoch:
        rows.append(("train", "valid", "pruned_epoch", float(result.pruned_epoch)))
    check_metrics(rows)
    return model, result, rows


def _pruning(cfg: dict[str, Any], trainer: Any, dataset: Any, conditions: list[Any], ask: Any) -> Any:
    """The Trainer's ``stop`` for a search trial with a pruner (``config.search.prune``: the metric it reads):
    after each epoch, the trial's validation value of that metric (for ``label_loss``, the epoch's selection loss;
    else the metric on the validation split under the first condition, as the search's selection reads it) goes
    into the history row as ``search_value`` and to ``ask``; True stops training. The evaluation runs with the
    random state saved and restored, so the trial trains on as it would without it. After the last epoch there
    is nothing left to save: the answer is ignored and the trial completes."""
    metric = (cfg.get("search") or {}).get("prune")
    if not metric or ask is None:
        return None
    import math

    def stop(epoch: int, model: Any, row: dict[str, Any], valid_loss: float) -> bool:
        if metric == "label_loss":
            value = valid_loss
        else:
            with _random_state_kept(trainer.device):
                got = _search_rows(model, dataset, conditions, trainer, cfg["seed"])
            value = next((v for _, split, m, v in got if split == "valid" and m == metric), None)
        if value is None or not math.isfinite(value):  # nothing to compare: the pruner is not asked
            return False
        row["search_value"] = float(value)
        prune = bool(ask(epoch, float(value)))  # asked at the last epoch too: the study records every value
        return prune and epoch < cfg["train"]["epochs"]  # but a run that trained every epoch is complete

    return stop


def _search_rows(model: Any, dataset: Any, conditions: list[Any], trainer: Any, seed: int) -> list[tuple]:
    """The metrics on the validation split under ``conditions``: what a search selects and prunes on."""
    from .evaluation import evaluate

    return evaluate(
        model,
        dataset,
        conditions,
        device=trainer.device,
        batch_size=trainer.cfg.eval_batch_size,
        seed=seed,
        split="valid",
        probes=False,
    )


@contextmanager
def _random_state_kept(device: Any) -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


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


def _warn_oversubscribed(threads: int, execution: Any, log: Callable[[str], None]) -> None:
    """One warning line when the threads asked for (per run, times the local workers) exceed this process's cores:
    OpenMP threads then spin against each other, 2 to 20 times slower for small models (docs/performance.md)."""
    from .executors.base import usable_cores

    if execution.kind != "local":  # a cluster's nodes have their own cores
        return
    jobs, cores = execution.jobs, usable_cores()
    if threads > 0 and threads * jobs > cores:
        per = f"{threads} thread(s) per run x {jobs} jobs" if jobs > 1 else f"{threads} threads per run"
        log(f"warning: {per} on {cores} core(s) oversubscribes them; threads: 0 (auto) picks a count that does not")


def _note_compile(mode: Any, log: Callable[[str], None]) -> None:
    """One line when ``train.compile`` is on: ``torch.compile`` compiles inside each run's first training steps,
    so the first epoch of every run (in a new process) waits a while, and its time enters the run's figures."""
    if mode:
        shown = "default" if mode is True else mode
        log(
            f"note: train.compile: {shown}: each run compiles its model during its first training steps (minutes "
            "on a CPU); that time counts in the run's seconds and samples/s (docs/performance.md)"
        )


def _before_any_work(
    suite: Suite, device: str | None, log: Callable[[str], None], execution: Any, threads: int | None
) -> None:
    """What must hold before any run starts: the device exists (a CUDA run on a machine without CUDA stops here),
    the data of ``fetch: true`` datasets is downloaded (offline: one message, no run), and every dataset finds its
    files (or one message lists those that do not); then the warnings about threads and compilation."""
    from .kernels import onednn_requested
    from .training import resolve_device

    resolve_device(device or suite.train["device"])
    onednn_requested(strict=True)  # a misspelt MFM_BENCH_ONEDNN stops here, not in every run
    fetching = suite if suite.fetch else replace(suite, datasets=[d for d in suite.datasets if d.params.get("fetch")])
    if fetching.datasets:
        from .data.fetch import prefetch_suite

        prefetch_suite(fetching, log=log)
    check_data(suite)
    _warn_oversubscribed(threads or suite.train.get("threads") or 0, execution, log)
    _note_compile(suite.train.get("compile"), log)


def _all_finished(out: Path, runs: list[Run], owner: dict[str, Any]) -> bool:
    """Whether ``out`` holds this very suite and configuration (``owner``, its fingerprint) with every run of
    ``runs`` finished: a read-only look, before the lock, the data checks and the workers. Anything unexpected
    (no store, another suite, a store of an older version) is False: the checks that follow say what is wrong."""
    import sqlite3

    from .results import DB_NAME

    if not runs or not (out / DB_NAME).is_file():
        return False
    try:
        with ResultStore(out, readonly=True) as store:
            held = store.get_meta("suite") or {}
            return held.get("hash") == owner["hash"] and all(store.status(r.id) == "finished" for r in runs)
    except (MfmBenchError, OSError, sqlite3.Error):
        return False


def run_suite(
    suite: Suite,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    seeds: list[int] | None = None,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    threads: int | None = None,
    allow_mixed: bool = False,
    execution: Any = None,
    shard: tuple[int, int] | None = None,
    deterministic: bool = False,
    limit: int | None = None,
) -> dict[str, int]:
    """Run every run of the grid not yet finished (with ``resume``); returns counts by status (and ``pruned``:
    finished search trials a pruner stopped early, when there are any).

    ``execution`` (:class:`mfm_bench.executors.Execution`, default: the suite's ``executor:`` block) says where
    runs train; ``shard=(k, n)`` runs only the k-th of n deterministic slices of the grid. Holds the lock on
    ``out`` throughout (:mod:`mfm_bench.lock`); refuses a folder of another suite or configuration, and with
    ``resume`` finished runs of other execution settings unless ``allow_mixed`` (:mod:`mfm_bench.outdir`).
    ``deterministic`` turns on torch's deterministic algorithms in every run (recorded); ``limit`` runs a seeded
    subset of each split (grid runs; a search's trials use the full data)."""
    from .outdir import fingerprint

    out = Path(out)
    execution = execution or suite.executor
    threads = _threads_per_run(suite, execution, threads)
    grid = expand(suite, seeds, device, threads, limit)
    if not grid and not suite.searches:
        raise MfmBenchError("the grid is empty: give at least one seed")
    runs = select_shard(grid, shard)
    # the whole grid's fingerprint, also in a shard's folder: merged shards are owned like an unsharded folder
    owner = fingerprint(suite.name, [r.config for r in grid] + _search_configs(suite, device, threads))
    # --resume with every run finished trains nothing: what only training needs (its data, device, workers) is
    # neither checked nor started, and the execution settings cannot mix anything
    idle = resume and not suite.searches and _all_finished(out, runs, owner)
    with _early_pool(execution, out, threads, needed=not idle) as pool:
        import torch

        from .lock import OutputLock
        from .outdir import check_settings, claim, settings

        if not idle:
            _before_any_work(suite, device, log, execution, threads)
        threads_before = torch.get_num_threads()
        with OutputLock(out, log), ResultStore(out) as store:
            for line in claim(store, out, owner, overwrite, resume):
                log(line)
            store.set_meta("formats", list(suite.formats))
            store.set_meta("reference", suite.reference)  # `mfm-bench leaderboard` pairs against it too
            todo = _todo(runs, store, out, resume, overwrite)
            if runs and not todo and not suite.searches:
                log(f"nothing left to run: {len(runs)} run(s) finished in {out}")
                return {"finished": 0, "failed": 0, "skipped": len(runs)}
            if idle:  # a run came unfinished since the look above (an --overwrite interrupted meanwhile)
                _before_any_work(suite, device, log, execution, threads)
            if len(todo) < len(runs):
                log(f"resuming: {len(runs) - len(todo)} of {len(runs)} runs already finished, {len(todo)} to go")
            # --deterministic as the runs will have it: this process turns it on only inside each run
            now = settings(expand_train(suite, device, threads), deterministic)
            check_settings(store, {r.id for r in todo}, now, out, allow_mixed)
            if resume and len(todo) < len(runs):
                _note_origins(store, {r.id for r in todo}, now, log)
            counts = {"finished": 0, "failed": 0, "skipped": len(runs) - len(todo)}
            opts = dict(seeds=seeds, device=device, threads=threads, shard=shard, resume=resume, overwrite=overwrite)
            opts["deterministic"] = deterministic
            opts["pool"] = pool
            built = _check_limit(todo, log) if limit else {}
            opts["datasets"] = built if pool is None else {}  # a pool's workers build their own
            try:
                with sigterm_as_interrupt():
                    _execute(suite, execution, store, out, todo, counts, progress, log, opts)
            finally:
                torch.set_num_threads(threads_before)  # --threads applies to this suite, not to the caller's process
        return counts


def _note_origins(store: Any, rerun: set[str], now: dict[str, Any], log: Callable[[str], None]) -> None:
    """One line per aspect (code, torch, hardware) on which the finished runs --resume keeps differ from each other
    or from this process: their numbers and the new runs' can differ at the same run id (not refused: a resume
    after an upgrade or on another machine is legitimate; the leaderboard notes the mix too)."""
    import torch

    from .provenance import origin, origin_notes

    kept = [origin(r["environment"]) for r in store.runs("finished") if r["id"] not in rerun]
    for line in origin_notes(kept, origin(environment(torch.device(now["device"]), {}))):
        log(f"note: the finished runs --resume keeps were made with {line}")


@contextmanager
def _early_pool(execution: Any, out: Path, threads: int | None, needed: bool = True) -> Iterator[Any]:
    """A local pool's worker processes, started before anything else, so that their start-up (importing torch)
    overlaps this process's checks and imports; the Ray executor, connected before the output folder is made, so
    that a cluster that is not there leaves no empty store behind; None for one local job. Stopped on the way out
    whatever happened: a suite that fails its checks leaves no worker behind (closing after a normal end does
    nothing). None too when nothing will run (not ``needed``)."""
    if not needed or (execution.kind == "local" and execution.jobs == 1):
        yield None
        return
    from .executors import make_executor

    with _sigterm_default():  # workers forked from this process must not inherit `mfm-bench run`'s SIGTERM handler
        pool = make_executor(execution, out, threads or 0)
    try:
        yield pool
    except BaseException:
        pool.cancel()
        raise
    finally:
        pool.close()


def _execute(
    suite: Suite,
    execution: Any,
    store: ResultStore,
    out: Path,
    todo: list[Run],
    counts: dict[str, int],
    progress: bool,
    log: Callable[[str], None],
    how: dict[str, Any],
) -> None:
    """Hand ``todo`` (and the suite's searches) to the executor ``execution`` asks for, under one suite bar."""
    from .executors import drive, make_executor
    from .executors.dispatch import GridSource, SuiteBar

    for run in todo:
        run.deterministic = how["deterministic"]
    source: Any = GridSource(todo)
    if suite.searches:
        from .search_run import SearchSource

        source = SearchSource(
            suite,
            store,
            todo,
            expand_args=(how["seeds"], how["device"], how["threads"]),
            shard=how["shard"],
            resume=how["resume"],
            overwrite=how["overwrite"],
            deterministic=how["deterministic"],
            log=log,
        )
    bar = SuiteBar(suite.name, source_total(source), progress, log)
    if suite.searches:
        source.log = bar.log  # a search's warnings print above the bar
    try:
        executor = how.get("pool") or make_executor(execution, out, how["threads"] or 0, tqdm_or_none(progress))
        if isinstance(getattr(executor, "datasets", None), dict):  # in this process: the datasets already built
            executor.datasets.update(how.get("datasets") or {})
        drive(executor, source, store, out, bar, counts, on_idle_slot=_warm_leaderboard)
        counts["skipped"] += getattr(source, "skipped", 0)  # a search's trials and final runs finished before
    finally:
        bar.close()


def _warm_leaderboard() -> None:
    """Import what the leaderboard's statistics need (``scipy.special``, 0.16 s on 2 cores) while a worker idles
    near the end of a parallel suite, instead of after the last run, when nothing else is left to do."""
    try:
        import scipy.special  # noqa: F401
    except ImportError:  # the leaderboard says so itself, later
        pass


def expand_train(suite: Suite, device: str | None, threads: int | None) -> dict[str, Any]:
    """The suite's train options with the command line's device and threads."""
    train = dict(suite.train)
    if device:
        train["device"] = device
    if threads is not None:
        train["threads"] = threads
    return train


def _search_configs(suite: Suite, device: str | None, threads: int | None) -> list[dict[str, Any]]:
    """A config per (dataset, searched model) with its search block, so a changed search is another suite."""
    train = expand_train(suite, device, threads)
    return [
        {
            **run_config(suite, d, m.name, m.label, m.params, 0, train),
            "search": _search_record(m.search),
        }
        for d in suite.datasets
        for m in suite.models
        if m.search is not None
    ]


def _search_record(spec: Any) -> dict[str, Any]:
    """A search block as plain data; without ``pruner`` when it has none, so that the suites of earlier versions
    keep their identity."""
    import dataclasses

    record = json.loads(json.dumps(dataclasses.asdict(spec), default=str))
    if record.get("pruner") is None:
        record.pop("pruner", None)
    return record


def source_total(source: Any) -> int:
    return getattr(source, "total", None) or len(getattr(source, "runs", []))


def tqdm_or_none(progress: bool) -> Any:
    """Per-epoch bars, or None. disable=None: tqdm's own check, so no bars flood a log file or a pipe."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return partial(tqdm, disable=None)


def _threads_per_run(suite: Suite, execution: Any, threads: int | None) -> int | None:
    """Torch threads per run: as asked, else for parallel executors the cores split across jobs (so N jobs on C
    cores never oversubscribe). Not part of run ids."""
    from .executors import worker_threads

    if threads is not None or suite.train.get("threads"):
        return threads
    if execution.kind == "ray":
        return max(1, int(execution.cpus))
    return worker_threads(execution.jobs) if execution.jobs > 1 else None


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N, e.g. 1/4, got {text!r}") from None
    if n < 1:
        raise ValueError(f"--shard {text}: N, the number of shards, must be 1 or more")
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N ({n})")
    return k, n


def select_shard(runs: list[Run], shard: tuple[int, int] | None) -> list[Run]:
    """The k-th of n slices of the grid: runs whose position in grid order is k-1 modulo n (every run in one
    shard, sizes within one of each other, the same on every machine)."""
    if shard is None:
        return runs
    k, n = shard
    return [r for i, r in enumerate(runs) if i % n == k - 1]


def _todo(runs: list[Run], store: ResultStore, out: Path, resume: bool, overwrite: bool) -> list[Run]:
    """The runs to execute: all with ``overwrite``, the unfinished ones with ``resume``; else finished runs stop us."""
    done = {r.id for r in runs if store.status(r.id) == "finished"}
    if done and not (resume or overwrite):
        raise OutputExistsError(
            f"{out} already holds {len(done)} finished run(s) of this suite; "
            "pass --resume to run only the rest, --overwrite to run them again, or choose another --out"
        )
    return [r for r in runs if overwrite or r.id not in done]
