"""An output folder belongs to one suite, run one way.

- The store records the suite's fingerprint: its name and its resolved grid (every run config, seeds, device and
  threads left out). Running another suite, or a changed configuration, into the folder is refused
  (:class:`SuiteMismatchError`) unless ``--overwrite`` clears it; more seeds of the same suite are welcome.
- Each run's record holds the execution settings that can change its numbers without changing its id: the
  device, the CPU threads (as asked, a count or auto, beside the count training used) and torch's deterministic
  switch. ``--resume`` keeps finished runs only when they ran with the settings of this invocation; else it is
  refused (:class:`MixedSettingsError`) unless ``--allow-mixed`` (docs/results.md: reproducibility measures how
  much they move the metrics).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import MfmBenchError
from .trainconfig import identity

SETTINGS = ("device", "threads", "deterministic")


class SuiteMismatchError(MfmBenchError):
    """The output folder holds results of another suite or of another configuration of this one."""


class MixedSettingsError(MfmBenchError):
    """``--resume`` would mix runs made with other execution settings (threads, device, deterministic)."""


def fingerprint(name: str, configs: list[dict[str, Any]]) -> dict[str, Any]:
    """{"name", "grid", "hash"}: the grid is every distinct run config with seed, device and threads removed, and
    the train options left out of run ids at their old value (:func:`mfm_bench.trainconfig.identity`), so a folder
    made before an option existed still belongs to its suite."""
    grid, seen = [], set()
    for c in configs:
        c = {
            **{k: v for k, v in c.items() if k != "seed"},
            "train": identity({k: v for k, v in c["train"].items() if k not in ("device", "threads")}),
        }
        key = json.dumps(c, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            grid.append(json.loads(key))
    digest = hashlib.sha256(json.dumps([name, grid], sort_keys=True).encode()).hexdigest()[:16]
    return {"name": name, "grid": grid, "hash": digest}


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The first path where ``a`` (recorded) and ``b`` (now) differ, as ``path: old -> new``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    if isinstance(a, list) and isinstance(b, list):
        what = "configurations" if path == "grid" else "entries"
        changes = [f"added {_short(y)}" for y in b if y not in a] + [f"removed {_short(x)}" for x in a if x not in b]
        return f"{path}: {len(a)} {what} -> {len(b)}" + (f", {changes[0]}" if changes else "")
    return f"{path}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}"


def _short(item: Any) -> str:
    """An entry of a list that changed: a run configuration by its dataset and model, else its JSON."""
    if isinstance(item, dict) and isinstance(item.get("model"), dict) and isinstance(item.get("dataset"), dict):
        return f"{item['dataset'].get('name')} / {item['model'].get('label')}"
    return json.dumps(item, default=str)


def _discard_files(out: Path, runs: list[str], evaluations: list[str]) -> None:
    """The files of runs and re-evaluations the store no longer holds (``--overwrite`` of another configuration):
    each run's folder and TensorBoard events, each evaluation's predictions; nothing else in ``out`` is touched."""
    import shutil

    for run_id in runs:
        for folder in (out / "runs" / run_id, out / "tensorboard" / run_id):
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
    for eid in evaluations:
        (out / "evaluations" / f"{eid}.parquet").unlink(missing_ok=True)


def claim(store: Any, out: Path, fp: dict[str, Any], overwrite: bool, resume: bool = False) -> list[str]:
    """Record ``fp`` as the folder's suite, or refuse when the folder holds another one (``overwrite`` clears it).

    With ``resume``, a suite whose only change is a larger ``n_trials`` in search blocks is the same suite grown:
    ``fp`` replaces the record and the searches go on from their finished trials. Returns a line per grown
    search (empty otherwise)."""
    old = store.get_meta("suite")
    if old is None and not store.runs():
        store.set_meta("suite", fp)
        return []
    if old is not None and old["hash"] == fp["hash"]:
        return []
    grown = _grown_searches(old["grid"], fp["grid"]) if old is not None and old["name"] == fp["name"] else None
    if grown and resume and not overwrite and all(new > was for _, was, new in grown):
        store.set_meta("suite", fp)
        return [
            f"the search of {label} grows from {was} to {new} trials: its finished trials are kept, the new ones run, "
            "then the chosen configuration's final runs"
            for label, was, new in grown
        ]
    if overwrite:
        held = [r["id"] for r in store.runs()]
        evaluations = [e["id"] for e in store.evaluations()]
        store.clear()
        store.set_meta("suite", fp)
        _discard_files(out, held, evaluations)
        return []
    if old is None:
        what = "runs recorded without a suite fingerprint (an older mfm-bench)"
    elif old["name"] != fp["name"]:
        what = f"results of suite {old['name']!r}, not {fp['name']!r}"
    else:
        change = _first_difference(old["grid"], fp["grid"], "grid")
        what = f"results of another configuration of suite {fp['name']!r} ({change})"
    hint = ""
    if grown and all(new > was for _, was, new in grown):
        hint = "; to add trials to the search and keep the finished ones, pass --resume"
    elif grown:
        hint = (
            "; a search cannot shrink in place (its finished trials beyond n_trials would still be in the folder): "
            "keep the larger n_trials"
        )
    raise SuiteMismatchError(
        f"{out} holds {what}; rows would mix them{hint}. Pass --overwrite to discard those results, or choose "
        "another --out"
    )


def _grown_searches(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[tuple[str, int, int]] | None:
    """[(model on dataset, old n_trials, new n_trials)] when the two grids differ only in the n_trials of search
    blocks, else None."""

    def without_n(grid: list[dict[str, Any]]) -> list[str]:
        return sorted(
            json.dumps({**c, "search": {k: v for k, v in c["search"].items() if k != "n_trials"}}, sort_keys=True)
            if isinstance(c.get("search"), dict)
            else json.dumps(c, sort_keys=True)
            for c in grid
        )

    if len(old) != len(new) or without_n(old) != without_n(new):
        return None

    def trials(grid: list[dict[str, Any]]) -> dict[str, int]:
        def name(c: dict[str, Any]) -> str:
            model, data = c.get("model") or {}, c.get("dataset") or {}
            return f"{model.get('label') or model.get('name')!r} on {data.get('label') or data.get('name')!r}"

        return {name(c): c["search"].get("n_trials") for c in grid if isinstance(c.get("search"), dict)}

    was, now = trials(old), trials(new)
    changed = [(k, was[k], now[k]) for k in sorted(now) if was[k] != now[k]]  # the same searches on both sides
    return changed or None


def settings(train: dict[str, Any], deterministic: bool | None = None) -> dict[str, Any]:
    """The execution settings a run of ``train`` (the suite's resolved train options) uses in this process, or with
    ``deterministic`` (``--deterministic``, which each run turns on for itself) as the runs will."""
    import torch

    from .training import resolve_device

    threads = train.get("threads") or 0
    return {
        "device": str(resolve_device(train.get("device", "auto"))),
        # a count as asked, or "auto" (threads: 0): the Trainer picks it per model (training.auto_threads), and
        # each run's record then holds the count it used (runner.perform) beside what was asked (threads_asked)
        "threads": threads if threads > 0 else AUTO,
        "deterministic": torch.are_deterministic_algorithms_enabled() if deterministic is None else deterministic,
    }


#: ``threads`` of :func:`settings` when the suite leaves the count to the Trainer
AUTO = "auto"


def recorded_settings(env: dict[str, Any]) -> dict[str, Any]:
    """The execution settings a finished run was made with, as :func:`settings` writes them: ``threads`` is what was
    asked, ``"auto"`` for a run left to the Trainer (its ``environment.threads`` holds the count it used, which
    differs between models by design), else the count. Runs recorded before ``threads_asked`` existed give their
    count."""
    was = {k: env.get(k) for k in SETTINGS}
    if env.get("threads_asked") == AUTO:
        was["threads"] = AUTO
    return was


def same_settings(env: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether a finished run (its recorded ``environment``) ran with the settings ``now`` asks for, like with
    like: threads left to auto match runs left to auto (the same model gets the same count), a count matches
    runs asked for that count (``--jobs N`` asks each run for its share of the cores)."""
    return recorded_settings(env) == now


def check_settings(store: Any, rerun: set[str], now: dict[str, Any], out: Path, allow_mixed: bool) -> None:
    """Refuse to keep finished runs (every one whose id is not in ``rerun``) recorded with other execution
    settings than ``now``: they would share leaderboard rows with the new ones."""
    if allow_mixed:
        return
    other = {}
    for r in store.runs("finished"):
        env = r["environment"]
        was = recorded_settings(env)
        if was["threads"] == AUTO:
            was["threads"] = f"auto ({env.get('threads')})"
        if r["id"] not in rerun and not same_settings(env, now):
            other[json.dumps(was, sort_keys=True)] = other.get(json.dumps(was, sort_keys=True), 0) + 1
    if other:
        listed = "; ".join(f"{n} run(s) with {k}" for k, n in other.items())
        raise MixedSettingsError(
            f"{out} holds finished runs made with other execution settings ({listed}; now "
            f"{json.dumps(now, sort_keys=True)}): their metrics can differ at the same run id. Rerun with the "
            "recorded --threads/--device (no --threads for auto; the same --jobs, which sets threads per run), pass "
            "--overwrite to run everything again, or --allow-mixed to keep them"
        )
