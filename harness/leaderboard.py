"""Leaderboards from a ResultStore: one row per dataset x model, mean ± std and a 95% CI over seeds.

The leaderboard reads only the store and the metric declarations (``mfm_bench.metric_catalog``): ``collect``
gathers the numbers, ``board`` lays them out as tables (:class:`mfm_bench.render.Board`), and
``mfm_bench.render`` writes Markdown, HTML, CSV and JSON. A metric's direction is the one recorded in the store
(``higher_is_better``, written from the declarations when the run finished), else its current declaration;
its section and display come from its declaration (an undeclared metric joins the main table).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import render
from .errors import MfmBenchError, MissingFileError, StorageError
from .metric_catalog import COST, PROBES, TASK, Catalog, Metric, catalog
from .outdir import recorded_settings
from .provenance import origin, origin_notes
from .render import DEFAULT_FORMATS, FORMATS, Board, Chart, Table
from .results import ResultStore, atomic_write
from .stats import CI_HI, CI_LO, paired, seed_ci

__all__ = ["collect", "board", "write_leaderboard", "already_there", "FORMATS", "DEFAULT_FORMATS"]


def _stats(values: list[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    # fsum is exactly rounded, so the numbers do not depend on the order runs were recorded (a merged store)
    mean = math.fsum(vals) / len(vals)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(vals)}


def _interval(vals: list[float], boot: dict[str, float] | None) -> dict[str, Any]:
    """The 95% CI: t over seeds with two or more, else the stored bootstrap over test samples, else none."""
    ci = seed_ci(vals)
    if ci is not None:
        return {"ci": list(ci), "ci_kind": "seeds"}
    if boot and CI_LO[:-1] in boot and CI_HI[:-1] in boot:
        return {"ci": [boot[CI_LO[:-1]], boot[CI_HI[:-1]]], "ci_kind": "bootstrap"}
    return {"ci": None, "ci_kind": None}


def _normalisation(runs: Any) -> dict[str, list[str]]:
    """{dataset label: the feature normalisations its finished runs used} (from the stored dataset params)."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in runs:
        params = r["config"].get("dataset", {}).get("params", {}) or {}
        out[r["dataset"]].add(str(params.get("normalise", "as the dataset defines")))
    return {k: sorted(v) for k, v in out.items()}


def _direction(metric: str, stored: set[int], cat: Catalog) -> bool | None:
    """The direction the store recorded (when its runs agree), else the current declaration."""
    if len(stored) == 1:
        return bool(next(iter(stored)))
    d = cat.find(metric)
    return None if d is None else d.higher_is_better


def shown_metrics(
    store: ResultStore, runs: list[dict[str, Any]] | None = None, searches: list[dict[str, Any]] | None = None
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(the finished runs the leaderboard shows, by id; the metric rows it reads): search trials that were not
    chosen are left out, and so are validation rows; re-evaluations (``mfm-bench evaluate``) add the conditions the
    runs never measured, test split only, the latest winning, each row with its ``evaluation_id`` (None for the
    run's own). ``mfm-bench compare`` reads the same rows."""
    from .search_board import hidden_runs

    runs = store.runs() if runs is None else runs
    searches = store.searches() if searches is None else searches
    hidden = hidden_runs(runs, searches)  # search trials that were not chosen
    finished = {r["id"]: r for r in runs if r["status"] == "finished" and r["id"] not in hidden}
    rows = []
    for m in store.metrics_and_reevaluations():  # re-evaluations add conditions the runs never measured
        if m["run_id"] not in finished or m["split"] == "valid":
            continue
        if m["evaluation_id"] is not None and m["split"] != "test":  # `evaluate --split train`: not the test split
            continue
        rows.append(m)
    return finished, rows


def collect(store: ResultStore) -> dict[str, Any]:
    """{dataset: {condition: {model: {"seeds": n, "metrics": {metric: stats}}}}}, plus run summaries. A row with
    re-evaluated numbers has ``reevaluated``: {"runs": how many of its runs were re-evaluated, "of": its finished
    runs, "evaluations": the evaluation ids}."""
    from .provenance import LEADERBOARD_SCHEMA_VERSION
    from .search_board import oracle_rows

    runs = store.runs()
    searches = store.searches()
    finished, shown = shown_metrics(store, runs, searches)  # finished runs less the search trials not chosen
    values: dict[tuple, list[float]] = defaultdict(list)
    by_seed: dict[tuple, dict[int, float]] = defaultdict(dict)
    boot: dict[tuple, dict[str, float]] = defaultdict(dict)
    seeds: dict[tuple, set] = defaultdict(set)
    stored: dict[str, set[int]] = defaultdict(set)
    reevaluated: dict[tuple, dict[str, set[str]]] = defaultdict(lambda: {"runs": set(), "evaluations": set()})
    of: dict[tuple, set[str]] = defaultdict(set)
    for r in finished.values():
        of[(r["dataset"], r["label"])].add(r["id"])
    for m in shown:
        run = finished[m["run_id"]]
        cond = m["condition"] if m["condition"] != "train" else "clean"
        key = (run["dataset"], cond, run["label"])
        if m["evaluation_id"] is not None:
            reevaluated[key]["runs"].add(run["id"])
            reevaluated[key]["evaluations"].add(m["evaluation_id"])
        if m["metric"].startswith((CI_LO, CI_HI)):  # bootstrap bounds: attached to their metric below
            bound, metric = m["metric"].split(":", 1)
            boot[key + (metric,)][bound] = m["value"]
            continue
        value = m["value"] if m["value"] is not None else float("nan")
        values[key + (m["metric"],)].append(value)
        by_seed[key + (m["metric"],)][run["seed"]] = value
        seeds[key].add(run["seed"])
        if m["higher_is_better"] is not None:
            stored[m["metric"]].add(m["higher_is_better"])
    cat = catalog()
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for (ds, cond, label, metric), vals in values.items():
        row = (
            table.setdefault(ds, {})
            .setdefault(cond, {})
            .setdefault(label, {"seeds": len(seeds[(ds, cond, label)]), "metrics": {}})
        )
        key = (ds, cond, label, metric)
        row["metrics"][metric] = {
            **_stats(vals),
            **_interval(vals, boot.get(key)),
            "by_seed": by_seed[key],
            "higher_is_better": _direction(metric, stored[metric], cat),
        }
        if (ds, cond, label) in reevaluated:
            got = reevaluated[(ds, cond, label)]
            row["reevaluated"] = {
                "runs": len(got["runs"]),
                "of": len(of[(ds, label)]),
                "evaluations": sorted(got["evaluations"]),
            }
    _in_suite_order(table, _model_order(store.get_meta("suite"), runs))
    oracle_rows(store, searches, table)
    return {
        "schema_version": LEADERBOARD_SCHEMA_VERSION,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "datasets": table,
        "normalise": _normalisation(finished.values()),
        "searches": searches,
        "runs": [
            {k: r[k] for k in ("id", "suite", "dataset", "label", "seed", "status", "seconds")}
            | {
                "error": (r["error"] or "").splitlines()[0] if r["error"] else None,
                "versions": {k: r["environment"].get(k) for k in ("mfm_bench", "torch", "git_commit", "device")},
                "origin": origin(r["environment"]),  # code, torch and hardware in words
                "settings": recorded_settings(r["environment"]),  # threads "auto": a count per model
                "warnings": r["environment"].get("data_warnings", []),
                "limit": r["config"].get("limit"),
            }
            for r in runs
            if r["status"] != "finished" or r["id"] in finished  # a finished run not shown: a trial not chosen
        ],
    }


def _model_order(suite: dict[str, Any] | None, runs: list[dict[str, Any]]) -> dict[str, int]:
    """{model label: rank}: the suite's order of models (its recorded grid), then any other label in the order its
    runs first started. Not the order rows were written: a first model whose run failed and finished on --resume,
    or finished after another under --jobs, would move down and stop being the effective-robustness reference."""
    labels = [c.get("model", {}).get("label") for c in (suite or {}).get("grid", []) if isinstance(c, dict)]
    labels += [r["label"] for r in sorted(runs, key=lambda r: r["started"] or 0.0)]
    order: dict[str, int] = {}
    for label in labels:
        if label is not None:
            order.setdefault(label, len(order))
    return order


def _in_suite_order(table: dict[str, dict[str, dict[str, Any]]], order: dict[str, int]) -> None:
    for conds in table.values():
        for cond, rows in conds.items():
            conds[cond] = dict(sorted(rows.items(), key=lambda kv: order.get(kv[0], len(order))))


# -- how each metric is shown ------------------------------------------------------------------------------
def _meta(metric: str, cat: Catalog) -> Metric:
    """The metric's declaration, or a plain task metric for an undeclared one."""
    return cat.find(metric) or Metric(metric, None, TASK, package="?")


def _direction_of(rows: dict[str, Any], metric: str) -> bool | None:
    return next((r["metrics"][metric]["higher_is_better"] for r in rows.values() if metric in r["metrics"]), None)


def _header(metric: str, meta: Metric, hib: bool | None) -> str:
    name = meta.label if meta.label and meta.name == metric else metric
    if meta.section == COST:
        return name
    return name + (" ↑" if hib else " ↓" if hib is not None else "")


def _fmt(stats: dict[str, float], meta: Metric) -> str:
    mean, std = stats["mean"], stats["std"]
    if math.isnan(mean):
        return "-"
    if meta.display == "size":
        return f"{mean / 1e3:.1f}k" if mean < 1e6 else f"{mean / 1e6:.2f}M"
    if meta.display == "count":
        return f"{mean:.0f}"
    text = f"{mean:.3f} ± {std:.3f}" if stats["n"] > 1 else f"{mean:.3f}"
    ci = stats.get("ci")
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and meta.section != COST else "")


def _best(rows: dict[str, Any], metric: str, meta: Metric) -> float | None:
    hib = _direction_of(rows, metric)
    if hib is None or not meta.rank:
        return None
    means = [
        r["metrics"][metric]["mean"]
        for r in rows.values()
        if metric in r["metrics"] and not math.isnan(r["metrics"][metric]["mean"])
    ]
    if len(means) < 2:
        return None
    return max(means) if hib else min(means)


def _direction_in(conds: dict[str, Any], metric: str) -> bool | None:
    return next((d for rows in conds.values() if (d := _direction_of(rows, metric)) is not None), None)


# -- tables --------------------------------------------------------------------------------------------------
def _main_columns(rows: dict[str, Any], cat: Catalog) -> list[str]:
    """Declared task metrics in declaration order, then other task metrics by name, then cost metrics."""
    metrics = {m for r in rows.values() for m in r["metrics"]}
    section = {m: _meta(m, cat).section for m in metrics}
    task = [m for m in metrics if section[m] == TASK]
    declared = sorted((m for m in task if cat.position(m) is not None), key=cat.position)
    other = sorted(m for m in task if cat.position(m) is None)
    cost = sorted(
        (m for m in metrics if section[m] == COST), key=lambda m: (cat.position(m) is None, cat.position(m) or 0, m)
    )
    return declared + other + cost


def _main_metric(rows: dict[str, Any], cat: Catalog) -> str | None:
    """The first declared task metric present: the one the robustness table and the chart show."""
    return next(
        (m for m in _main_columns(rows, cat) if cat.position(m) is not None and _meta(m, cat).section == TASK), None
    )


def _main_table(clean: dict[str, Any], cat: Catalog) -> Table | None:
    cols = _main_columns(clean, cat)
    if not cols:
        return None
    metas = [_meta(m, cat) for m in cols]
    best = [_best(clean, m, meta) for m, meta in zip(cols, metas)]
    rows, marks = [], set()
    for i, (label, r) in enumerate(clean.items()):
        cells: list[Any] = [label, r["seeds"]]
        for j, (m, meta) in enumerate(zip(cols, metas)):
            st = r["metrics"].get(m)
            cells.append(_fmt(st, meta) if st else "-")
            if st and best[j] is not None and st["mean"] == best[j]:
                marks.add((i, j + 2))
        rows.append(cells)
    headers = ["model", "seeds", *[_header(m, meta, _direction_of(clean, m)) for m, meta in zip(cols, metas)]]
    return Table("clean test split", headers, rows, marks)


def _probe_table(clean: dict[str, Any], cat: Catalog) -> Table | None:
    """Rows (model, code), columns factors, from metrics of the probes section named
    ``<prefix><factor>_from_<code>``."""
    per: dict[tuple[str, str], dict[str, str]] = {}
    for label, r in clean.items():
        for m, st in r["metrics"].items():
            meta = _meta(m, cat)
            if meta.section == PROBES and meta.name.endswith("*") and "_from_" in m:
                factor, code = m[len(meta.name) - 1 :].rsplit("_from_", 1)
                per.setdefault((label, code), {})[factor] = _fmt(st, meta)
    if not per:
        return None
    factors = sorted({f for cells in per.values() for f in cells})
    rows = [[label, code, *[cells.get(f, "-") for f in factors]] for (label, code), cells in per.items()]
    return Table(
        "linear probes: test R² of each true factor (columns) from each learned code (rows)",
        ["model", "code", *factors],
        rows,
    )


def _robustness_table(conds: dict[str, Any], cat: Catalog) -> Table | None:
    clean = conds.get("clean", {})
    others = [c for c in conds if c != "clean"]
    main = _main_metric(clean, cat)
    if not others or main is None:
        return None
    meta = _meta(main, cat)
    rows = []
    for label in clean:
        cells = []
        for c in ["clean", *others]:
            st = conds[c].get(label, {}).get("metrics", {}).get(main)
            cells.append((_fmt(st, meta) if st else "-") + _partial_mark(conds[c].get(label, {})))
        rows.append([label, *cells])
    return Table(
        f"robustness: {_header(main, meta, _direction_of(clean, main))} under each condition",
        ["model", "clean", *others],
        rows,
    )


#: Past this many per-target columns (``<target>/<metric>``, e.g. POM's 17 traits x 2) the main table keeps the
#: averages and the per-target values move to a transposed table below it: a row per target.
MAX_TARGET_COLUMNS = 4


def _per_target_table(clean: dict[str, Any], cat: Catalog) -> tuple[dict[str, Any], Table | None]:
    """(the clean rows without their per-target metrics, the transposed per-target table) when a dataset has more
    than :data:`MAX_TARGET_COLUMNS` per-target columns; else (the rows as they are, None)."""
    per = sorted({m for r in clean.values() for m in r["metrics"] if "/" in m})
    if len(per) <= MAX_TARGET_COLUMNS:
        return clean, None
    targets = list(dict.fromkeys(m.rsplit("/", 1)[0] for m in per))
    kinds = list(dict.fromkeys(m.rsplit("/", 1)[1] for m in per))
    cols = [(label, k) for label in clean for k in kinds]
    rows = []
    for t in targets:
        cells = [clean[label]["metrics"].get(f"{t}/{k}") for label, k in cols]
        rows.append([t, *[_fmt(st, _meta(f"{t}/{k}", cat)) if st else "-" for st, (_, k) in zip(cells, cols)]])
    first = {k: f"{targets[0]}/{k}" for k in kinds}  # the direction and declaration of a kind, from one target
    headers = [
        "target",
        *[f"{label} {_header(k, _meta(first[k], cat), _direction_of(clean, first[k]))}" for label, k in cols],
    ]
    stripped = {
        label: {**r, "metrics": {m: st for m, st in r["metrics"].items() if "/" not in m}} for label, r in clean.items()
    }
    return stripped, Table(
        f"clean test split, per target ({len(targets)} targets; the main table averages them)", headers, rows
    )


def _section_tables(conds: dict[str, Any], cat: Catalog) -> list[Table]:
    """One table per section of its own (a plugin's), rows (model, condition) where its metrics were measured."""
    sections: dict[str, set[str]] = {}
    for rows in conds.values():
        for r in rows.values():
            for m in r["metrics"]:
                s = _meta(m, cat).section
                if s not in (TASK, COST, PROBES):
                    sections.setdefault(s, set()).add(m)
    tables = []
    for title, found in sections.items():
        metrics = sorted(found)
        rows = [
            [label, c, *[_fmt(r["metrics"][m], _meta(m, cat)) if m in r["metrics"] else "-" for m in metrics]]
            for c, models in conds.items()
            for label, r in models.items()
            if found & set(r["metrics"])
        ]
        headers = ["model", "condition", *[_header(m, _meta(m, cat), _direction_in(conds, m)) for m in metrics]]
        tables.append(Table(title, headers, rows))
    return tables


def _paired_table(clean: dict[str, Any], reference: str | None, cat: Catalog) -> Table | None:
    """Each model against ``reference`` on every task metric, paired over the seeds both ran (ttest_rel)."""
    if reference is None or reference not in clean:
        return None
    cols = [m for m in _main_columns(clean, cat) if _meta(m, cat).section == TASK]
    ref = clean[reference]["metrics"]
    rows = []
    for label, r in clean.items():
        if label == reference:
            continue
        cells: list[Any] = [label]
        for m in cols:
            if m not in r["metrics"] or m not in ref:
                cells.append("-")
                continue
            t = paired(r["metrics"][m]["by_seed"], ref[m]["by_seed"])
            p = "n < 2" if math.isnan(t["p"]) else f"p={t['p']:.3f}"
            cells.append("-" if math.isnan(t["diff"]) else f"{t['diff']:+.3f} ({p})" + (" ≈" if t["noise"] else ""))
        rows.append(cells)
    headers = ["model", *[_header(m, _meta(m, cat), _direction_of(clean, m)) for m in cols]]
    return Table(
        f"paired over seeds against {reference}: mean difference (model - {reference}) and the paired "
        "t-test p; ≈ marks a difference not distinguishable from noise (p ≥ 0.05 or fewer than 2 seeds)",
        headers,
        rows,
    )


def _chart(ds: str, conds: dict[str, Any], cat: Catalog) -> Chart | None:
    """The main metric (mean ± std over seeds) of every model under every condition."""
    clean = conds.get("clean", {})
    main = _main_metric(clean, cat)
    if main is None:
        return None
    none = {"mean": float("nan"), "std": 0.0}
    series = []
    for c in ["clean", *[c for c in conds if c != "clean"]]:
        st = [conds[c].get(label, {}).get("metrics", {}).get(main, none) for label in clean]
        series.append((c, [x["mean"] for x in st], [x["std"] for x in st]))
    return Chart(
        f"{ds}: {main} under each condition",
        _header(main, _meta(main, cat), _direction_of(clean, main)),
        list(clean),
        series,
    )


def _sweep_tables(conds: dict[str, Any], cat: Catalog) -> list[Table]:
    """Per sweep, the main metric against severity; then one summary: AUC, relative and effective robustness."""
    from .conditions import severity_text
    from .robustness import summary_rows, sweeps

    main = _main_metric(conds.get("clean", {}), cat)
    curves = sweeps(conds, main) if main else {}
    if not curves:
        return []
    head = _header(main, _meta(main, cat), _direction_of(conds.get("clean", {}), main))
    tables = []
    for name, per_model in curves.items():
        sev = [severity_text(s) for s, _ in per_model[0].points]
        rows = [[c.model, *[_num(v) for _, v in c.points]] for c in per_model]
        tables.append(Table(f"{head} against severity: {name}", ["model", *sev], rows))
    rows = [[sw, m, sev, *[_num(v) for v in vals]] for sw, m, sev, *vals in summary_rows(curves)]
    tables.append(
        Table(
            f"robustness summary of {head} (first model is the effective-robustness reference)",
            ["sweep", "model", "severities", "AUC", "relative robustness", "effective robustness"],
            rows,
        )
    )
    return tables


def _num(v: float) -> str:
    return "-" if v is None or math.isnan(v) else f"{round(v, 3) + 0.0:.3f}"


def board(data: dict[str, Any], reference: str | None = None) -> Board:
    """The tables of every dataset (main, paired comparison with ``reference``, probes, robustness, then plugins'
    own sections), the feature normalisation, charts, unfinished runs. Cells read mean ± std [95% CI]: the t
    interval over seeds, or the bootstrap over test samples for one seed (:mod:`mfm_bench.stats`)."""
    from .search_board import search_table

    cat = catalog()
    b = Board(data["generated"], {})
    limits = sorted({r["limit"] for r in data["runs"] if r.get("limit")})
    if limits:
        b.title = f"Leaderboard (smoke test: --limit {', '.join(map(str, limits))} samples per split; not comparable)"
    for ds, conds in data["datasets"].items():
        clean = conds.get("clean", {})
        averaged, per_target = _per_target_table(clean, cat)
        norm = Table(
            "feature normalisation (dataset param normalise)",
            ["dataset", "normalise"],
            [[ds, ", ".join(data.get("normalise", {}).get(ds, ["?"]))]],
        )
        tables = [
            _main_table(averaged, cat),
            per_target,
            _paired_table(averaged, reference, cat),
            norm,
            _probe_table(clean, cat),
            _robustness_table(conds, cat),
        ]
        tables.append(search_table(data.get("searches", []), ds))
        b.datasets[ds] = [t for t in tables if t is not None] + _sweep_tables(conds, cat) + _section_tables(conds, cat)
        chart = _chart(ds, conds, cat)
        if chart is not None:
            b.charts[ds] = chart
    b.failed = [
        [r["id"], r["dataset"], r["label"], str(r["seed"]), r["error"] or "?"]
        for r in data["runs"]
        if r["status"] == "failed"
    ]
    b.unfinished = [
        (
            r["id"],
            f"{r['dataset']} / {r['label']} / seed {r['seed']}: {r['status']}"
            + (f": {r['error']}" if r["error"] and r["error"] != r["status"] else ""),
        )
        for r in data["runs"]
        if r["status"] not in ("finished", "failed")
    ]
    b.notes = _notes(data["runs"]) + _reevaluation_notes(data)
    return b


def _partial_mark(row: dict[str, Any]) -> str:
    """`` (re-evaluated: k of n runs)`` after a cell whose condition a re-evaluation scored for some runs only."""
    got = row.get("reevaluated")
    return f" (re-evaluated: {got['runs']} of {got['of']} runs)" if got and got["runs"] < got["of"] else ""


def _reevaluation_notes(data: dict[str, Any]) -> list[str]:
    """A note per (dataset, condition, model) that a re-evaluation scored for only some of the model's runs: its
    numbers are over those runs, and the rest of the row is over all of them."""
    notes = []
    for ds, conds in data["datasets"].items():
        for cond, rows in conds.items():
            for label, row in rows.items():
                got = row.get("reevaluated")
                if got and got["runs"] < got["of"]:
                    notes.append(
                        f"partial re-evaluation: {ds} / {label} under {cond} was re-evaluated (mfm-bench evaluate, "
                        f"{', '.join(got['evaluations'])}) for {got['runs']} of its {got['of']} finished runs; "
                        f"its {cond} numbers are over {row['seeds']} seed(s), not all of them; `mfm-bench evaluate "
                        f"OUT --condition ...` on the whole folder scores every run"
                    )
    return notes


def _notes(runs: list[dict[str, Any]]) -> list[str]:
    """Warnings a reader must see: finished runs of mixed execution settings, of mixed code, torch or hardware
    (merged shards from other machines, a folder resumed after an upgrade), data warnings."""
    notes = []
    kinds: dict[str, int] = defaultdict(int)
    for r in runs:
        if r["status"] == "finished":
            kinds[", ".join(f"{k} {v}" for k, v in r["settings"].items())] += 1
    if len(kinds) > 1:
        notes.append(
            "finished runs were made with different execution settings (--allow-mixed), so their "
            "numbers can differ at the same run id: " + "; ".join(f"{k} ({n} runs)" for k, n in kinds.items())
        )
    origins = [r["origin"] for r in runs if r["status"] == "finished" and r.get("origin")]
    notes += [
        f"finished runs were made with {n}; one run of the suite in one place would not mix them (`mfm-bench run "
        "SUITE --out OUT --overwrite` there runs them all alike)"
        for n in origin_notes(origins)
    ]
    notes += sorted({w for r in runs for w in r.get("warnings") or []})
    return notes


def no_store(folder: str | Path) -> MissingFileError:
    """The error for a path that is not an output folder: a file (the store itself, a suite) or a folder without a
    store."""
    from .results import DB_NAME

    folder = Path(folder)
    if folder.is_file():
        hint = (
            f"pass the folder that holds it: {folder.parent}"
            if folder.name == DB_NAME
            else f"pass the output folder of `mfm-bench run` (its --out), which holds {DB_NAME}"
        )
        return MissingFileError(f"{folder} is a file, not an output folder; {hint}")
    return MissingFileError(
        f"{folder} holds no {DB_NAME}; run a suite into it first (mfm-bench run SUITE --out {folder})"
    )


def write_leaderboard(
    folder: str | Path, formats: list[str] | None = None, reference: str | None = None
) -> dict[str, Path]:
    """Write leaderboard.{md,csv,json,html} into ``folder``: the ``formats`` asked for (by default the formats
    the suite asked for), plus every leaderboard file already in ``folder``, so none is left showing older numbers
    than the others. All are rendered from one read of the store before any is written, each write atomic; return
    their paths by format (see :func:`already_there` for which were not asked for).
    ``reference``: the model label every model is compared with (default: the suite's ``report.reference``)."""
    from .results import DB_NAME

    folder = Path(folder)
    if not (folder / DB_NAME).exists():
        raise no_store(folder)
    unknown = set(formats or ()) - set(FORMATS)
    if unknown:
        raise MfmBenchError(
            f"unknown leaderboard format(s) {', '.join(sorted(unknown))}; formats are {', '.join(FORMATS)}"
        )
    with ResultStore(folder, readonly=True) as store:  # read only: the writes below say what cannot be written
        data = collect(store)
        asked = formats or store.get_meta("formats") or DEFAULT_FORMATS  # none given: what the suite asked for
        if reference is None:
            reference = store.get_meta("reference")
    # every leaderboard file already there is rewritten too: one left as it was would disagree with the store
    formats = [f for f in FORMATS if f in asked or f in already_there(folder)]
    return _render_and_write(folder, data, formats, reference)


def already_there(folder: str | Path) -> list[str]:
    """The leaderboard formats whose file is in ``folder``."""
    return [f for f in FORMATS if (Path(folder) / render.FILES[f]).is_file()]


def _render_and_write(folder: Path, data: dict, formats: list[str], reference: str | None) -> dict[str, Path]:
    """Render and write each format. Runs are in the store already, so a failure here is one clear line saying
    they are kept and how to write the leaderboard again (an unwritable file, or a render bug: --debug shows it)."""
    from .results import DB_NAME

    kept = f"the runs are kept in {folder / DB_NAME}"
    order = [m.name for m in catalog().metrics if m.section == TASK and not m.name.endswith("*")]
    text = {
        "markdown": lambda b: render.markdown(b),
        "csv": lambda b: render.to_csv(data, order),
        "json": lambda b: render.to_json(data),
        "html": lambda b: render.html(b),
    }
    written: dict[str, Path] = {}
    rendered: dict[str, str] = {}
    what = "tables"
    try:
        b = board(data, reference)
        for fmt in (f for f in FORMATS if f in formats):  # every format rendered before any file is replaced
            what = fmt
            rendered[fmt] = text[fmt](b)
        for fmt, content in rendered.items():
            what = fmt
            atomic_write(folder / render.FILES[fmt], content)
            written[fmt] = folder / render.FILES[fmt]
    except OSError as e:
        target = folder / render.FILES[what] if what in render.FILES else folder
        done = f"; rewritten before it: {', '.join(str(p) for p in written.values())}" if written else ""
        raise StorageError(
            f"cannot write the leaderboard {target}: {e.strerror or e}{done}; {kept}: fix that (free space, make "
            f"the folder writable, move what is in the way), then run `mfm-bench leaderboard {folder}`"
        ) from e
    except MfmBenchError:
        raise
    except Exception as e:  # noqa: BLE001 - a render bug must not hide that the runs are safe
        raise MfmBenchError(
            f"cannot render the leaderboard {what} of {folder} ({type(e).__name__}: {e}), a bug to report "
            f"(`mfm-bench --debug leaderboard {folder}` shows where); {kept}, and no leaderboard file was "
            "rewritten (each is rendered before any is replaced, so they never disagree)"
            + (
                f"; to write the others meanwhile, move {folder / render.FILES[what]} away and run "
                f"`mfm-bench leaderboard {folder} --format FORMAT`"
                if what in render.FILES
                else ""
            )
        ) from e
    return written
