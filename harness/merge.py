"""Merge the output folders of shards (``mfm-bench run --shard K/N``) into one.

Run ids are content hashes, so the same id in two folders is the same run: it is kept once. Two folders that
hold different results for one id (other metric values; timings aside) are an error naming both. A finished
run wins over a failed or interrupted attempt of the same id. Each run's folder (model, history) is copied, and
so are the searches, the re-evaluations (``mfm-bench evaluate``, with their predictions files) and the meta keys,
with the same rule: identical records kept once, different ones under one key an error naming both folders.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MfmBenchError, MissingFileError
from .lock import OutputLock
from .results import DB_NAME, ResultStore

#: metrics that measure the machine, not the model: two honest runs of one id differ in them (the training
#: timings and the cost rows of :func:`mfm_bench.provenance.cost_rows`)
TIMINGS = ("train_seconds", "train_samples_per_sec", "infer_ms_per_sample", "peak_rss_mb", "cuda_peak_mb")


class MergeConflictError(MfmBenchError):
    """Two folders hold different results for one run id."""


def _numbers(metrics: list[dict[str, Any]]) -> dict[tuple, Any]:
    return {(m["condition"], m["split"], m["metric"]): m["value"] for m in metrics if m["metric"] not in TIMINGS}


def _first_difference(a: dict[tuple, Any], b: dict[tuple, Any]) -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{'/'.join(key)}: {a.get(key)} vs {b.get(key)}"
    return ""


def merge(out: str | Path, sources: list[str | Path], log: Callable[[str], None] = print) -> dict[str, int]:
    """Merge the stores of ``sources`` into ``out`` (created, or added to): every table a shard can hold (runs
    with their metrics, searches, re-evaluations, meta). Returns counts: added, same, replaced (runs) and
    evaluations (re-evaluations added)."""
    out = Path(out)
    folders = [Path(s) for s in sources]
    for f in folders:
        if not (f / DB_NAME).exists():
            raise MissingFileError(f"{f} holds no {DB_NAME}; give the output folders of `mfm-bench run --shard`")
        if f.resolve() == out.resolve():
            raise MfmBenchError(f"{f} is the merge target itself; give another OUT")
    counts = {"added": 0, "same": 0, "replaced": 0, "evaluations": 0}
    with OutputLock(out, log), ResultStore(out) as dest:
        origin = {r["id"]: (out, r) for r in dest.runs()}
        for folder in folders:
            with ResultStore(folder) as src:
                _merge_meta(dest, out, folder, src)
                for run in src.runs():
                    _merge_run(dest, out, origin, folder, run, src.metrics(run["id"]), counts)
                _merge_searches(dest, out, folder, src.searches())
        # after every run is in: a re-evaluation refers to its runs, and a replaced run would take its rows along
        evaluations = {e["id"]: (out, e) for e in dest.evaluations()}
        for folder in folders:
            with ResultStore(folder) as src:
                for ev in src.evaluations():
                    counts["evaluations"] += _merge_evaluation(dest, out, evaluations, folder, ev)
    return counts


def _merge_evaluation(
    dest: ResultStore, out: Path, seen: dict[str, tuple[Path, dict]], folder: Path, ev: dict[str, Any]
) -> int:
    """Copy one re-evaluation (``mfm-bench evaluate``) and its predictions file unless the same one is there;
    two different records under one evaluation id conflict. Returns 1 when it was added."""
    had = seen.get(ev["id"])
    if had is not None:
        if had[1] == ev:
            return 0
        raise MergeConflictError(
            f"re-evaluation {ev['id']} differs between {had[0]} and {folder}; merge only copies of one "
            "`mfm-bench evaluate`, or drop one of the folders"
        )
    dest.insert_evaluation(ev)
    seen[ev["id"]] = (folder, ev)
    parquet = folder / "evaluations" / f"{ev['id']}.parquet"
    if parquet.exists():
        (out / "evaluations").mkdir(parents=True, exist_ok=True)
        shutil.copy2(parquet, out / "evaluations" / parquet.name)
    return 1


def _merge_meta(dest: ResultStore, out: Path, folder: Path, src: ResultStore) -> None:
    """The folder's owner (the suite's fingerprint, :mod:`mfm_bench.outdir`), leaderboard reference and formats,
    so a merged folder is owned like an unsharded one (``--resume`` of the whole suite on it); shards of two
    suites conflict."""
    suite, have = src.get_meta("suite"), dest.get_meta("suite")
    if suite is not None:
        if have is not None and have["hash"] != suite["hash"]:
            raise MergeConflictError(
                f"{folder} holds results of suite {suite['name']!r} in another configuration "
                f"than {out} ({have['name']!r}); merge only shards of one suite"
            )
        dest.set_meta("suite", suite)
    reference, had = src.get_meta("reference"), dest.get_meta("reference")
    if reference is not None and had is not None and reference != had:
        raise MergeConflictError(
            f"{folder} compares against reference {reference!r}, an earlier folder merged into {out} against "
            f"{had!r}; merge only shards of one suite"
        )
    if reference is not None:
        dest.set_meta("reference", reference)
    formats = list(dest.get_meta("formats") or [])
    formats += [f for f in src.get_meta("formats") or [] if f not in formats]
    if formats:
        dest.set_meta("formats", formats)


def _merge_searches(dest: ResultStore, out: Path, folder: Path, searches: list[dict[str, Any]]) -> None:
    """Copy each search record (a search ran whole in one shard); two different records of one search conflict."""
    have = {(s["dataset"], s["label"]): s for s in dest.searches()}
    for s in searches:
        old = have.get((s["dataset"], s["label"]))
        if old is not None and old != s:
            raise MergeConflictError(
                f"the search of {s['label']!r} on {s['dataset']!r} chose differently in {folder} "
                f"and in an earlier folder merged into {out}; merge shards of one suite run only"
            )
        record = {k: v for k, v in s.items() if k not in ("dataset", "label")}
        dest.record_search(s["dataset"], s["label"], record)


def _merge_run(
    dest: ResultStore,
    out: Path,
    origin: dict[str, tuple[Path, dict]],
    folder: Path,
    run: dict[str, Any],
    metrics: list[dict[str, Any]],
    counts: dict[str, int],
) -> None:
    """Add one run of ``folder`` to ``dest`` unless the same result is there; refuse a conflicting one."""
    had = origin.get(run["id"])
    if had is not None:
        where, old = had
        if old["status"] == "finished" and run["status"] != "finished":
            return
        if old["status"] == "finished":
            a, b = _numbers(dest.metrics(run["id"])), _numbers(metrics)
            if a != b:
                raise MergeConflictError(
                    f"run {run['id']} ({run['dataset']} / {run['label']} / seed {run['seed']}) has different results "
                    f"in {where} and {folder} ({_first_difference(a, b)}); merge only shards of one suite run with "
                    "the same settings, or rerun one of them"
                )
            counts["same"] += 1
            return
        counts["replaced"] += 1
    else:
        counts["added"] += 1
    dest.insert(run, metrics)
    origin[run["id"]] = (folder, run)
    src_dir, dst_dir = folder / "runs" / run["id"], out / "runs" / run["id"]
    if src_dir.is_dir():
        shutil.copytree(src_dir, dst_dir, dirs_exist_ok=True)
