"""Compare two output folders (or stores) per (dataset, model, condition, metric): the means of each side over the
seeds both have, their difference, a paired t-test across those same seeds (``scipy.stats.ttest_rel``'s, see
``mfm_bench.stats``), the training-throughput ratio, and a regression gate for CI (``mfm-bench compare``; docs/ci.md
has a recipe). Seeds only one side has are listed apart, never mixed into the paired numbers; a key with no seed in
common is compared unpaired, over each side's own seeds, and says so.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MfmBenchError
from .leaderboard import shown_metrics
from .metric_catalog import TASK, catalog
from .results import DB_NAME, ResultStore
from .stats import CI_HI, CI_LO, paired_diff_p

THROUGHPUT = "train_samples_per_sec"


class CompareInputError(MfmBenchError):
    """Inputs that cannot be compared (no store, nothing in common); ``mfm-bench compare`` exits 2."""


@dataclass
class Row:
    dataset: str
    model: str
    condition: str
    metric: str
    base: float  # mean over the seeds both sides have (over BASE's own seeds when they share none)
    new: float  # the same for NEW
    seeds: int  # seeds both sides have: the means and the paired test are over these
    p: float | None  # paired t-test across those seeds
    higher_is_better: bool | None
    regression: str = ""  # why this row fails the gate, empty when it passes
    base_only: tuple[int, ...] = ()  # seeds only BASE has: left out of the means and the test (unless none shared)
    new_only: tuple[int, ...] = ()  # seeds only NEW has

    @property
    def paired(self) -> bool:
        """Whether the means are over the same seeds on both sides (False: no seed in common, an unpaired
        comparison of each side's own seeds)."""
        return self.seeds > 0

    def seeds_text(self) -> str:
        """The seeds cell: the paired count, then the seeds only one side has, or how an unpaired row was made."""
        if not self.paired:
            return f"0 (unpaired: BASE {len(self.base_only)}, NEW {len(self.new_only)})"
        extra = [f"+{len(s)} {side} only" for side, s in (("BASE", self.base_only), ("NEW", self.new_only)) if s]
        return f"{self.seeds}" + (f" ({', '.join(extra)})" if extra else "")

    @property
    def diff(self) -> float:
        return self.new - self.base

    @property
    def worse_by(self) -> float:
        """How much worse NEW is (positive) in the metric's direction; 0 when it has none."""
        if self.higher_is_better is None:
            return 0.0
        return -self.diff if self.higher_is_better else self.diff


def load(path: str | Path) -> dict[tuple[str, str, str, str], dict[int, float]]:
    """{(dataset, model label, condition, metric): {seed: value}} of the finished runs of a folder or store file,
    the numbers its leaderboard shows (:func:`mfm_bench.leaderboard.shown_metrics`: re-evaluated conditions too);
    ``load.datasets`` (an attribute of the result) maps each dataset label to its config."""
    p = Path(path)
    folder = p.parent if p.name == DB_NAME else p
    if not (folder / DB_NAME).exists():
        raise CompareInputError(f"{path} holds no {DB_NAME}: pass an output folder of `mfm-bench run` or its store")
    from .provenance import origin

    values: dict[tuple, dict[int, float]] = Measured(dict)
    with ResultStore(folder, readonly=True) as store:
        every = store.runs()
        values.status = _run_status(every)
        values.origins = [origin(r["environment"] or {}) for r in every if r["status"] == "finished"]
        # the rows the leaderboard shows: re-evaluated conditions included, search trials not chosen left out
        runs, shown = shown_metrics(store, every)
        values.datasets = {r["dataset"]: json.dumps(r["config"]["dataset"], sort_keys=True) for r in runs.values()}
        values.limits = defaultdict(set)  # --limit N: a smoke test on a subset of each split
        for r in runs.values():
            values.limits[r["dataset"]].add(r["config"].get("limit"))
        for m in shown:
            run = runs[m["run_id"]]
            if m["value"] is None or m["metric"].startswith((CI_LO, CI_HI)):  # a bootstrap bound: no metric
                continue
            values[(run["dataset"], run["label"], m["condition"], m["metric"])][run["seed"]] = m["value"]
    return values


class Measured(defaultdict):
    """What :func:`load` returns: the values, ``datasets``: {dataset label: its config as JSON}, ``limits``:
    {dataset label: the ``--limit`` values of its runs (None: the full splits)}, ``status``: every run's
    (:func:`_run_status`) and ``origins``: the finished runs' (:func:`mfm_bench.provenance.origin`)."""

    datasets: dict[str, str] = {}
    limits: dict[str, set[int | None]] = {}
    status: dict[tuple[str, str, int], str] = {}
    origins: list[dict[str, str]] = []


def _run_status(runs: list[dict[str, Any]]) -> dict[tuple[str, str, int], str]:
    """{(dataset, model label, seed): "finished", or the status and first error line of a run that did not finish}
    of a store's runs; a finished run wins over an unfinished one of the same key."""
    out: dict[tuple[str, str, int], str] = {}
    for r in runs:
        key = (r["dataset"], r["label"], r["seed"])
        if r["status"] == "finished":
            out[key] = "finished"
        elif out.get(key) != "finished":
            error = (r["error"] or "").strip().splitlines()
            out[key] = r["status"] + (f": {error[0][:200]}" if error and error[0] != r["status"] else "")
    return out


def other_origins(base: Measured, new: Measured) -> list[str]:
    """How BASE's and NEW's finished runs (what :func:`load` read) differ in torch and hardware, a line per aspect:
    there a metric can move by the kernels' rounding alone, whatever the code did. The code is left out: a
    comparison of two commits is what the gate is for."""
    from .provenance import WHY

    lines = []
    for aspect in ("torch", "hardware"):
        seen = [sorted({o[aspect] for o in side.origins}) for side in (base, new)]
        if all(seen) and seen[0] != seen[1]:
            lines.append(f"{aspect}: BASE {' + '.join(seen[0])}; NEW {' + '.join(seen[1])} ({WHY[aspect]})")
    return lines


def unfinished_in_new(base: Measured, new: Measured) -> list[str]:
    """The runs (dataset / model / seed) that finished in BASE but failed, or did not finish, in NEW (what
    :func:`load` read): a model that crashes in NEW has no metrics there, so without this the gate would compare the
    other models and pass."""
    base, new = base.status, new.status
    return [
        f"{d} / {m} / seed {s}: {new[(d, m, s)]}"
        for (d, m, s), status in sorted(base.items())
        if status == "finished" and (d, m, s) in new and new[(d, m, s)] != "finished"
    ]


def paired_p(base: dict[int, float], new: dict[int, float]) -> float | None:
    """Two-sided p-value over the common seeds (:func:`mfm_bench.stats.paired_diff_p`, as the leaderboard's paired
    table): the paired t-test, or the exact sign test for a constant shift; None with under 2 seeds."""
    seeds = sorted(set(base) & set(new))
    return paired_diff_p(np.asarray([new[s] - base[s] for s in seeds], dtype=np.float64))


def compare(base_path: str | Path, new_path: str | Path, loaded: tuple[Any, Any] | None = None) -> list[Row]:
    """One :class:`Row` per key both sides measured; :class:`CompareInputError` explains a mismatch. ``loaded``:
    what :func:`load` read of both sides, when the caller has it already."""
    base, new = loaded if loaded is not None else (load(base_path), load(new_path))
    common = sorted(set(base) & set(new))
    if not common:
        raise CompareInputError(f"{base_path} and {new_path} have nothing in common to compare: " + mismatch(base, new))
    changed = [d for d in {k[0] for k in common} if base.datasets.get(d) != new.datasets.get(d)]
    if changed:
        raise CompareInputError(
            f"dataset {changed[0]!r} is configured differently in {base_path} and {new_path} "
            f"(BASE {base.datasets.get(changed[0])}, NEW {new.datasets.get(changed[0])}): "
            "scores on different data are not comparable; run both on the same suite's datasets"
        )
    for d in sorted({k[0] for k in common}):
        a, b = base.limits.get(d, {None}), new.limits.get(d, {None})
        if a != b:
            raise CompareInputError(
                f"dataset {d!r} was scored on other samples in {base_path} ({_limit(a)}) than in {new_path} "
                f"({_limit(b)}): `mfm-bench run --limit N` is a smoke test on a subset of each split; run both "
                "sides with the same --limit, or none"
            )
    cat = catalog()
    rows = []
    for key in common:
        meta = cat.find(key[3])
        hib = meta.higher_is_better if meta else None
        b, n = base[key], new[key]
        shared = sorted(set(b) & set(n))
        over = shared or None  # no seed in common: each side's own seeds, an unpaired row that says so
        rows.append(
            Row(
                *key,
                _mean(b, over),
                _mean(n, over),
                len(shared),
                paired_p(b, n),
                hib,
                base_only=tuple(sorted(set(b) - set(n))),
                new_only=tuple(sorted(set(n) - set(b))),
            )
        )
    return rows


def _mean(values: dict[int, float], seeds: list[int] | None) -> float:
    """The mean over ``seeds`` (None: every seed), exactly rounded so it does not depend on the seeds' order."""
    vals = [values[s] for s in (sorted(values) if seeds is None else seeds)]
    return math.fsum(vals) / len(vals)


def unpaired_seeds(rows: list[Row]) -> list[str]:
    """One line per (dataset, model) and set of seeds only one side has, naming the conditions: those seeds are
    left out of the means and the paired test of the rows (where no seed is shared, the rows are unpaired, over each
    side's own seeds, with no test)."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in rows:
        if r.base_only or r.new_only:
            sides = (("BASE", r.base_only), ("NEW", r.new_only))
            what = "; ".join(f"{side} only: seed(s) {', '.join(map(str, s))}" for side, s in sides if s)
            how = "left out of the means and the test" if r.paired else "no seed in common: unpaired means, no test"
            conds = groups[(r.dataset, r.model, f"{what} ({how})")]
            if r.condition not in conds:
                conds.append(r.condition)
    return [f"{d} / {m} / {', '.join(conds)}: {what}" for (d, m, what), conds in sorted(groups.items())]


def one_sided(base: dict[tuple, Any], new: dict[tuple, Any]) -> list[str]:
    """What only one side measured, so no row compares it: "BASE only: dataset / model / condition (n metrics)" per
    (dataset, model, condition), or the metrics alone where both sides have the condition. A condition that NEW
    lost (a re-evaluation not made there, a suite that dropped it) would otherwise pass the gate unseen."""
    out = []
    for side, have, other in (("BASE", base, new), ("NEW", new, base)):
        groups: dict[tuple, list[str]] = defaultdict(list)
        for key in have:
            if key not in other:
                groups[key[:3]].append(key[3])
        both = {k[:3] for k in other}
        for group, metrics in sorted(groups.items()):
            what = " / ".join(group)
            if group in both:
                out.append(f"{side} only: {what}: {', '.join(sorted(metrics))}")
            else:
                out.append(f"{side} only: {what} ({len(metrics)} metric(s))")
    return out


def _limit(limits: set[int | None]) -> str:
    return ", ".join("the full splits" if n is None else f"--limit {n}" for n in sorted(limits, key=lambda n: n or 0))


def mismatch(base: dict[tuple, Any], new: dict[tuple, Any]) -> str:
    """What differs between two sides: datasets, models, conditions only one has."""
    parts = []
    for i, what in enumerate(("datasets", "models", "conditions")):
        a, b = {k[i] for k in base}, {k[i] for k in new}
        if a != b:
            parts.append(
                f"{what} only in BASE: {', '.join(sorted(a - b)) or '-'}; only in NEW: "
                f"{', '.join(sorted(b - a)) or '-'}"
            )
    return "; ".join(parts) or "no finished runs on one side"


def gate(rows: list[Row], max_drop: dict[str, float], alpha: float | None, max_slowdown: float | None) -> list[Row]:
    """Mark and return the rows that fail: worse beyond ``max_drop[metric]``, significantly worse at ``alpha``
    (task metrics only), or throughput down by more than ``max_slowdown`` (a fraction)."""
    cat = catalog()
    failed = []
    for r in rows:
        meta = cat.find(r.metric)
        if r.metric in max_drop and r.worse_by > max_drop[r.metric]:
            r.regression = f"worse by {r.worse_by:.4g} > {max_drop[r.metric]:g}"
        elif (
            alpha is not None
            and r.p is not None
            and r.worse_by > 0
            and r.p < alpha
            and (meta is None or meta.section == TASK)  # not cost, probes or a plugin's own section
        ):
            r.regression = f"significantly worse (p={r.p:.3g} < {alpha:g})"
        elif max_slowdown is not None and r.metric == THROUGHPUT and r.base > 0 and r.new / r.base < 1 - max_slowdown:
            r.regression = f"throughput x{r.new / r.base:.2f} < {1 - max_slowdown:.2f}"
        if r.regression:
            failed.append(r)
    return failed


def table(rows: list[Row], fmt: str = "text") -> str:
    """The comparison as a table: ``md`` for a pull-request comment, else plain text."""
    from tabulate import tabulate

    def num(v: float | None, spec: str = ".4f") -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    body = [
        [
            r.dataset,
            r.model,
            r.condition,
            r.metric + (" ↑" if r.higher_is_better else " ↓" if r.higher_is_better is False else ""),
            num(r.base),
            num(r.new),
            num(r.diff, "+.4f"),
            f"{r.new / r.base:.2f}x" if r.metric == THROUGHPUT and r.base else "",
            r.seeds_text(),
            num(r.p, ".3g"),
            ("**FAIL** " if fmt == "md" else "FAIL ") + r.regression if r.regression else "ok",
        ]
        for r in rows
    ]
    headers = ["dataset", "model", "condition", "metric", "base", "new", "diff", "ratio", "paired seeds", "p", "gate"]
    return tabulate(body, headers=headers, tablefmt="github" if fmt == "md" else "simple", disable_numparse=True)
