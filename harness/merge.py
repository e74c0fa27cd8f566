"""Merge the output folders of shards (``mfm-bench run --shard K/N``) into one.

Run ids are content hashes, so the same id in two folders is the same run: it is kept once. Two folders that
hold different results for one id (other metric values; timings aside) are an error naming both. A finished
run wins over a failed or interrupted attempt of the same id. Each run's folder (model, history) is copied, and
so are the searches, the re-evaluations (``mfm-bench evaluate``, with their predictions files) and the meta keys,
with the same rule: identical records kept once, different ones under one key an error naming both folders.

Every folder is read and checked first (:func:`plan`), and OUT is written only when all of them agree: a refused
merge leaves OUT as it was. New runs go in in the suite's grid order (dataset, model, seed), the order in which
one unsharded run records them, so the merged leaderboard lists its rows in the same order.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MfmBenchError, MissingFileError, OutputExistsError
from .lock import LOCK_NAME, OutputLock
from .lock import _describe as describe_holder
from .outdir import _first_difference as _config_difference
from .outdir import _grown_searches
from .provenance import origin, origin_notes
from .results import DB_NAME, ResultStore

#: metrics that measure the machine, not the model: two honest runs of one id differ in them (the training
#: timings and the cost rows of :func:`mfm_bench.provenance.cost_rows`)
TIMINGS = ("train_seconds", "train_samples_per_sec", "infer_ms_per_sample", "peak_rss_mb", "cuda_peak_mb")


class MergeConflictError(MfmBenchError):
    """Two folders hold different results for one run id."""


@dataclass
class Plan:
    """What a merge will write, each record with the folder it comes from; built from the folders alone.

    ``runs``: run id -> (folder, run row, its metrics), OUT's own runs included (folder ``out``); ``new``: the ids
    to write; ``meta``: key -> (folder, value); ``searches``: (dataset, label) -> (folder, record);
    ``evaluations``: id -> (folder, record); ``new_evaluations``: the ids to write."""

    out: Path
    runs: dict[str, tuple[Path, dict, list]] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    meta: dict[str, tuple[Path, Any]] = field(default_factory=dict)
    formats: list[str] = field(default_factory=list)
    searches: dict[tuple[str, str], tuple[Path, dict]] = field(default_factory=dict)
    evaluations: dict[str, tuple[Path, dict]] = field(default_factory=dict)
    new_evaluations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"added": 0, "same": 0, "replaced": 0, "evaluations": 0, "unfinished": 0}
    )


def _numbers(metrics: list[dict[str, Any]]) -> dict[tuple, Any]:
    return {(m["condition"], m["split"], m["metric"]): m["value"] for m in metrics if m["metric"] not in TIMINGS}


def _first_difference(a: dict[tuple, Any], b: dict[tuple, Any]) -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{'/'.join(key)}: {a.get(key)} vs {b.get(key)}"
    return ""


def merge(out: str | Path, sources: list[str | Path], log: Callable[[str], None] = print) -> dict[str, int]:
    """Merge the stores of ``sources`` into ``out`` (created, or added to): every table a shard can hold (runs
    with their metrics, searches, re-evaluations, meta). Every folder is checked before anything is written, so
    a refused merge leaves ``out`` as it was. Returns counts: added, same, replaced (runs), unfinished (OUT's
    runs not finished once merged) and evaluations (re-evaluations added)."""
    out = Path(out)
    folders = [Path(s) for s in sources]
    if out.exists() and not out.is_dir():
        raise OutputExistsError(
            f"cannot use the output folder {out}: it is a file, not a folder; give a new folder (or an earlier "
            "merge's) as OUT, then the shards' folders"
        )
    for f in folders:
        if not f.exists():
            raise MissingFileError(f"no such folder: {f}; give the output folders of `mfm-bench run --shard`")
        if not (f / DB_NAME).exists():
            raise MissingFileError(f"{f} holds no {DB_NAME}; give the output folders of `mfm-bench run --shard`")
        if f.resolve() == out.resolve():
            raise MfmBenchError(f"{f} is the merge target itself; give another OUT")
    for f in folders:
        if (holder := writer(f)) is not None:
            log(
                f"warning: {f} is still being written by another mfm-bench run ({holder}); its runs in progress are "
                "merged as not finished: merge it again once that run has ended"
            )
    first = None if (out / DB_NAME).exists() else plan(None, out, folders)  # a refusal here creates no OUT
    lock = OutputLock(out, log, way_on="or give another OUT")  # merge has no --out
    lock.acquire()
    try:
        with ResultStore(out) as dest:
            fresh = first is not None and not dest.runs() and dest.get_meta("suite") is None
            p = first if fresh else plan(dest, out, folders)  # under the lock: what OUT holds now
            _write(dest, p)
    finally:
        lock.release()
    finished = [origin(run["environment"] or {}) for _, run, _ in p.runs.values() if run["status"] == "finished"]
    for line in origin_notes(finished):  # shards from other nodes or checkouts: the leaderboard notes it too
        log(f"note: the merged runs were made with {line}")
    return p.counts


def writer(folder: Path) -> str | None:
    """Who holds ``folder``'s lock (a run still writing it: pid, host, start), or None when nobody does; probed
    without waiting, and only where this machine can see the lock (flock)."""
    import errno
    import os

    try:
        import fcntl
    except ImportError:  # Windows: no flock, no probe
        return None
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            try:
                return describe_holder(json.loads(os.pread(fd, 4096, 0).decode() or "{}"))
            except ValueError:
                return "a process that holds its lock"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def plan(dest: ResultStore | None, out: Path, folders: list[Path]) -> Plan:
    """Read OUT's store (``dest``, None when there is none yet) and every folder, and decide what to write;
    raise :class:`MergeConflictError` naming the two folders that disagree. Writes nothing."""
    p = Plan(out)
    if dest is not None:
        for key in ("suite", "reference"):
            if (value := dest.get_meta(key)) is not None:
                p.meta[key] = (out, value)
        p.formats = list(dest.get_meta("formats") or [])
        p.runs = {r["id"]: (out, r, dest.metrics(r["id"])) for r in dest.runs()}
        p.searches = {(s["dataset"], s["label"]): (out, s) for s in dest.searches()}
        p.evaluations = {e["id"]: (out, e) for e in dest.evaluations()}
    stores = []
    for folder in folders:
        with ResultStore(folder, readonly=True) as src:  # a shard is only read: a read-only one merges too
            _plan_meta(p, folder, src)
            for run in src.runs():
                _plan_run(p, folder, run, src.metrics(run["id"]))
            _plan_searches(p, folder, src.searches())
            stores.append((folder, src.evaluations()))
    # after every run: a re-evaluation refers to its runs
    for folder, evaluations in stores:
        for ev in evaluations:
            _plan_evaluation(p, folder, ev)
    p.counts["unfinished"] = sum(run["status"] != "finished" for _, run, _ in p.runs.values())  # in OUT after
    return p


def _write(dest: ResultStore, p: Plan) -> None:
    """Write what ``p`` decided: meta, then the new runs in grid order with their folders, searches and
    re-evaluations with their predictions files."""
    for key, (_, value) in p.meta.items():
        dest.set_meta(key, value)
    if p.formats:
        dest.set_meta("formats", p.formats)
    grid = (p.meta.get("suite") or (None, {}))[1].get("grid") or []
    for run_id in sorted(dict.fromkeys(p.new), key=lambda i: _grid_position(grid, p.runs[i][1])):
        folder, run, metrics = p.runs[run_id]
        dest.insert(run, metrics)
        src_dir = folder / "runs" / run_id
        if src_dir.is_dir():
            shutil.copytree(src_dir, p.out / "runs" / run_id, dirs_exist_ok=True)
    for (dataset, label), (folder, s) in p.searches.items():
        if folder != p.out:
            dest.record_search(dataset, label, {k: v for k, v in s.items() if k not in ("dataset", "label")})
    for eid in p.new_evaluations:
        folder, ev = p.evaluations[eid]
        dest.insert_evaluation(ev)
        parquet = folder / "evaluations" / f"{eid}.parquet"
        if parquet.exists():
            (p.out / "evaluations").mkdir(parents=True, exist_ok=True)
            shutil.copy2(parquet, p.out / "evaluations" / parquet.name)


def _grid_position(grid: list[dict[str, Any]], run: dict[str, Any]) -> tuple:
    """Where ``run`` stands in one unsharded run's order: its (dataset, model) in the suite's grid (the
    fingerprint of :mod:`mfm_bench.outdir`, in dataset then model order), then its seed, then when it started."""
    dataset = json.loads(json.dumps(run["config"].get("dataset"), sort_keys=True, default=str))
    me = (dataset, run["label"])
    pos = next((i for i, g in enumerate(grid) if (g.get("dataset"), g.get("model", {}).get("label")) == me), len(grid))
    return pos, run["seed"], run.get("started") or 0


def _plan_evaluation(p: Plan, folder: Path, ev: dict[str, Any]) -> None:
    """Take one re-evaluation (``mfm-bench evaluate``) unless the same one is there; two different records under
    one evaluation id conflict."""
    had = p.evaluations.get(ev["id"])
    if had is not None:
        if had[1] == ev:
            return
        raise MergeConflictError(
            f"re-evaluation {ev['id']} differs between {had[0]} and {folder}; merge only copies of one "
            "`mfm-bench evaluate`, or drop one of the folders"
        )
    p.evaluations[ev["id"]] = (folder, ev)
    p.new_evaluations.append(ev["id"])
    p.counts["evaluations"] += 1


def _plan_meta(p: Plan, folder: Path, src: ResultStore) -> None:
    """The folder's owner (the suite's fingerprint, :mod:`mfm_bench.outdir`), leaderboard reference and formats,
    so a merged folder is owned like an unsharded one (``--resume`` of the whole suite on it); shards of two
    suites conflict, naming the folder each came from."""
    suite, have = src.get_meta("suite"), p.meta.get("suite")
    if suite is not None:
        if have is not None and have[1]["hash"] != suite["hash"]:
            if have[1]["name"] != suite["name"]:
                what = f"{folder} holds results of suite {suite['name']!r}, {have[0]} of suite {have[1]['name']!r}"
            else:
                change = _config_difference(have[1].get("grid"), suite.get("grid"), "grid")
                what = (
                    f"{folder} holds results of suite {suite['name']!r} in another configuration than {have[0]} "
                    f"({change})"
                )
                if grown := _grown_searches(have[1].get("grid") or [], suite.get("grid") or []):
                    raise MergeConflictError(f"{what}; {_grown_hint(grown, have[0], folder)}")
            raise MergeConflictError(f"{what}; merge only shards of one suite file, run with one version of mfm-bench")
        p.meta.setdefault("suite", (folder, suite))
    reference, had = src.get_meta("reference"), p.meta.get("reference")
    if reference is not None and had is not None and reference != had[1]:
        raise MergeConflictError(
            f"{folder} compares against reference {reference!r}, {had[0]} against {had[1]!r}; "
            "merge only shards of one suite"
        )
    if reference is not None:
        p.meta.setdefault("reference", (folder, reference))
    p.formats += [f for f in src.get_meta("formats") or [] if f not in p.formats]


def _grown_hint(grown: list[tuple[str, int, int]], first: Path, folder: Path) -> str:
    """How to merge shards of which one grew a search with ``--resume`` (a larger ``n_trials``) and another did not:
    bring the smaller one to the larger suite the same way, which runs what the larger search adds to that shard
    (nothing, where the search went whole to another shard), then merge again."""
    label, was, new = grown[0]
    smaller, larger = (first, folder) if new > was else (folder, first)
    return (
        f"the search of {label} has {max(was, new)} trials in {larger} and {min(was, new)} in {smaller} (grown with "
        f"--resume); run the suite with the larger n_trials on that shard too (mfm-bench run SUITE --shard K/N --out "
        f"{smaller} --resume: it adds what the larger search gives that shard, often nothing), then merge again"
    )


def _plan_searches(p: Plan, folder: Path, searches: list[dict[str, Any]]) -> None:
    """Take each search record (a search ran whole in one shard); two different records of one search conflict."""
    for s in searches:
        key = (s["dataset"], s["label"])
        old = p.searches.get(key)
        if old is not None and old[1] != s:
            raise MergeConflictError(
                f"the search of {s['label']!r} on {s['dataset']!r} chose differently in {old[0]} and in {folder}; "
                "merge shards of one suite run only"
            )
        if old is None:
            p.searches[key] = (folder, s)


def _plan_run(p: Plan, folder: Path, run: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    """Take one run of ``folder`` unless the same result is already taken; refuse a conflicting one."""
    had = p.runs.get(run["id"])
    if had is not None:
        where, old, old_metrics = had
        if old["status"] == "finished" and run["status"] != "finished":
            return
        if old["status"] == "finished":
            a, b = _numbers(old_metrics), _numbers(metrics)
            if a != b:
                raise MergeConflictError(
                    f"run {run['id']} ({run['dataset']} / {run['label']} / seed {run['seed']}) has different results "
                    f"in {where} and {folder} ({_first_difference(a, b)}); merge only shards of one suite run with "
                    "the same settings, or rerun one of them"
                )
            p.counts["same"] += 1
            return
        p.counts["replaced"] += 1
    else:
        p.counts["added"] += 1
    p.runs[run["id"]] = (folder, run, metrics)
    p.new.append(run["id"])
