"""Leaderboards from a ResultStore: Markdown, CSV, JSON and HTML (with plots), one row per dataset x model,
mean ± std over seeds.

The leaderboard reads only the store. Tables are rendered by ``tabulate`` from one structure (``collect``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .errors import MissingFileError
from .metrics import higher_is_better
from .results import ResultStore, atomic_write

# Display order: task metrics first, then cost. Metrics not listed follow alphabetically.
ORDER = ["mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc7", "acc5", "acc", "f1_weighted",
         "f1_macro", "mse"]
COST = ["params", "train_samples_per_sec", "train_seconds", "best_epoch"]
SHORT = {"train_samples_per_sec": "samples/s", "train_seconds": "train s", "best_epoch": "best ep"}


def _stats(values: list[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "n": len(vals)}


def collect(store: ResultStore) -> dict[str, Any]:
    """{dataset: {condition: {model: {"seeds": n, "metrics": {metric: stats}}}}}, plus run summaries."""
    runs = store.runs()
    finished = {r["id"]: r for r in runs if r["status"] == "finished"}
    values: dict[tuple, list[float]] = defaultdict(list)
    seeds: dict[tuple, set] = defaultdict(set)
    for m in store.metrics():
        run = finished.get(m["run_id"])
        if run is None:
            continue
        cond = m["condition"] if m["condition"] != "train" else "clean"
        if m["split"] == "valid":
            continue
        key = (run["dataset"], cond, run["label"])
        values[key + (m["metric"],)].append(m["value"] if m["value"] is not None else float("nan"))
        seeds[key].add(run["seed"])
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for (ds, cond, label, metric), vals in values.items():
        row = table.setdefault(ds, {}).setdefault(cond, {}).setdefault(label, {"seeds": len(seeds[(ds, cond, label)]), "metrics": {}})
        row["metrics"][metric] = {**_stats(vals), "higher_is_better": higher_is_better(metric)}
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
        "datasets": table,
        "runs": [{k: r[k] for k in ("id", "suite", "dataset", "label", "seed", "status", "seconds")} | {
            "error": (r["error"] or "").splitlines()[0] if r["error"] else None,
            "versions": {k: r["environment"].get(k) for k in ("mfm_bench", "torch", "git_commit", "device")},
        } for r in runs],
    }


def _columns(rows: dict[str, Any], probes: bool) -> list[str]:
    metrics = {m for r in rows.values() for m in r["metrics"]}
    main = [m for m in ORDER if m in metrics]
    other = sorted(m for m in metrics if m not in ORDER and m not in COST and not m.startswith("probe_"))
    return main + other + [m for m in COST if m in metrics]


def _probe_rows(rows: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(model, code, {factor: stats}) from metrics named ``probe_<factor>_from_<code>``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for label, r in rows.items():
        for m, st in r["metrics"].items():
            if m.startswith("probe_") and "_from_" in m:
                factor, code = m[len("probe_"):].rsplit("_from_", 1)
                out.setdefault((label, code), {})[factor] = st
    return [(label, code, per) for (label, code), per in out.items()]


def _best(rows: dict[str, Any], metric: str) -> float | None:
    hib = higher_is_better(metric)
    if hib is None or metric in COST and metric != "train_samples_per_sec":
        return None
    means = [r["metrics"][metric]["mean"] for r in rows.values() if metric in r["metrics"] and not math.isnan(r["metrics"][metric]["mean"])]
    if len(means) < 2:
        return None
    return max(means) if hib else min(means)


def _fmt(stats: dict[str, float], metric: str) -> str:
    mean, std = stats["mean"], stats["std"]
    if math.isnan(mean):
        return "-"
    if metric == "params":
        return f"{mean / 1e3:.1f}k" if mean < 1e6 else f"{mean / 1e6:.2f}M"
    if metric in ("train_samples_per_sec", "train_seconds", "best_epoch"):
        return f"{mean:.0f}"
    return f"{mean:.3f} ± {std:.3f}" if stats["n"] > 1 else f"{mean:.3f}"


def _arrow(metric: str) -> str:
    if metric in COST:
        return SHORT.get(metric, metric)
    h = higher_is_better(metric)
    return metric + (" ↑" if h else " ↓" if h is not None else "")


def markdown(data: dict[str, Any]) -> str:
    from tabulate import tabulate

    lines = ["# Leaderboard", "",
             f"Mean ± std over seeds on the test split; the best mean per column is in **bold** (↑ higher is better, "
             f"↓ lower). Generated {data['generated']}.", ""]
    for ds, conds in data["datasets"].items():
        lines += [f"## {ds}", ""]
        clean = conds.get("clean", {})
        cols = _columns(clean, probes=False)
        if cols:
            best = {m: _best(clean, m) for m in cols}
            rows = []
            for label, r in clean.items():
                cells = []
                for m in cols:
                    st = r["metrics"].get(m)
                    cell = _fmt(st, m) if st else "-"
                    if st and best[m] is not None and st["mean"] == best[m]:
                        cell = f"**{cell}**"
                    cells.append(cell)
                rows.append([label, r["seeds"], *cells])
            lines += ["### clean test split", "", tabulate(rows, headers=["model", "seeds", *[_arrow(m) for m in cols]], tablefmt="github"), ""]
        probe_rows = _probe_rows(clean)
        if probe_rows:
            factors = sorted({f for _, _, per in probe_rows for f in per})
            rows = [[label, code, *[_fmt(per[f], "probe") if f in per else "-" for f in factors]] for label, code, per in probe_rows]
            lines += ["### linear probes: test R² of each true factor (columns) from each learned code (rows)", "",
                      tabulate(rows, headers=["model", "code", *factors], tablefmt="github"), ""]
        others = [c for c in conds if c != "clean"]
        if others:
            main = _main_metric(clean)
            if main:
                rows = []
                for label in clean:
                    cells = [_fmt(conds[c][label]["metrics"][main], main) if label in conds[c] and main in conds[c][label]["metrics"] else "-"
                             for c in ["clean", *others]]
                    rows.append([label, *cells])
                lines += [f"### robustness: {_arrow(main)} under each condition", "",
                          tabulate(rows, headers=["model", "clean", *others], tablefmt="github"), ""]
                extra = sorted({m for c in others for r in conds[c].values() for m in r["metrics"] if m.startswith("recon_")})
                if extra:
                    rows = [[label, c, *[_fmt(conds[c][label]["metrics"][m], m) if m in conds[c].get(label, {}).get("metrics", {}) else "-" for m in extra]]
                            for c in others for label in conds[c] if any(m in conds[c][label]["metrics"] for m in extra)]
                    lines += ["### reconstruction of the missing modality", "",
                              tabulate(rows, headers=["model", "condition", *[_arrow(m) for m in extra]], tablefmt="github"), ""]
    failed = [r for r in data["runs"] if r["status"] != "finished"]
    if failed:
        lines += ["## Runs not finished", ""]
        lines += [f"- `{r['id']}` {r['dataset']} / {r['label']} / seed {r['seed']}: {r['status']}"
                  + (f": {r['error']}" if r["error"] else "") for r in failed]
        lines.append("")
    return "\n".join(lines)


def to_csv(data: dict[str, Any]) -> str:
    rows = []
    metrics: list[str] = []
    for ds, conds in data["datasets"].items():
        for cond, models in conds.items():
            for label, r in models.items():
                row = {"dataset": ds, "condition": cond, "model": label, "seeds": r["seeds"]}
                for m, st in r["metrics"].items():
                    row[m] = st["mean"]
                    row[f"{m}_std"] = st["std"]
                    if m not in metrics:
                        metrics.append(m)
                rows.append(row)
    ordered = [m for m in ORDER if m in metrics] + sorted(m for m in metrics if m not in ORDER)
    header = ["dataset", "condition", "model", "seeds"] + [c for m in ordered for c in (m, f"{m}_std")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _main_metric(rows: dict[str, Any]) -> str | None:
    return next((m for m in ORDER if any(m in r["metrics"] for r in rows.values())), None)


def _png(fig: Any) -> str:
    import base64

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def html(data: dict[str, Any]) -> str:
    """A self-contained HTML report: the Markdown tables rendered as HTML, plus, per dataset, a bar chart of the
    main metric (mean ± std over seeds) under every condition. matplotlib draws the charts (embedded as PNG)."""
    import html as h

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tabulate import tabulate

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mfm-bench leaderboard</title><style>",
             "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
             f"<h1>Leaderboard</h1><p>Mean ± std over seeds on the test split. Generated {h.escape(data['generated'])}.</p>"]
    for ds, conds in data["datasets"].items():
        clean = conds.get("clean", {})
        parts.append(f"<h2>{h.escape(ds)}</h2>")
        cols = _columns(clean, probes=False)
        rows = [[label, r["seeds"], *[_fmt(r["metrics"][m], m) if m in r["metrics"] else "-" for m in cols]] for label, r in clean.items()]
        parts.append(tabulate(rows, headers=["model", "seeds", *[_arrow(m) for m in cols]], tablefmt="html"))
        main = _main_metric(clean)
        if main:
            names = ["clean", *[c for c in conds if c != "clean"]]
            labels = list(clean)
            fig, ax = plt.subplots(figsize=(min(12.0, 4 + 0.3 * len(labels) * len(names)), 4.5))
            width = 0.8 / len(names)
            for j, c in enumerate(names):
                st = [conds[c].get(label, {}).get("metrics", {}).get(main, {"mean": float("nan"), "std": 0.0}) for label in labels]
                ax.bar([i + j * width for i in range(len(labels))], [x["mean"] for x in st], width,
                       yerr=[x["std"] for x in st], label=c, capsize=2)
            ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(labels))], labels, rotation=20, ha="right")
            ax.set_ylabel(_arrow(main))
            ax.set_title(f"{ds}: {main} under each condition")
            ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1.0), loc="upper left")
            parts.append(f"<img alt='{h.escape(ds)} {main}' src='data:image/png;base64,{_png(fig)}'>")
            plt.close(fig)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_leaderboard(folder: str | Path, formats: list[str] | None = None) -> dict[str, Path]:
    """Write leaderboard.{md,csv,json,html} (those asked for) into ``folder`` atomically; return their paths."""
    folder = Path(folder)
    if not (folder / "results.sqlite").exists():
        raise MissingFileError(f"{folder} holds no results.sqlite; run a suite into it first "
                               f"(mfm-bench run SUITE --out {folder})")
    with ResultStore(folder) as store:
        data = collect(store)
    formats = formats or ["markdown", "csv", "json"]
    written = {}
    if "markdown" in formats:
        written["markdown"] = folder / "leaderboard.md"
        atomic_write(written["markdown"], markdown(data))
    if "csv" in formats:
        written["csv"] = folder / "leaderboard.csv"
        atomic_write(written["csv"], to_csv(data))
    if "json" in formats:
        written["json"] = folder / "leaderboard.json"
        atomic_write(written["json"], json.dumps(_nan_to_none(data), indent=2))
    if "html" in formats:
        written["html"] = folder / "leaderboard.html"
        atomic_write(written["html"], html(data))
    return written


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x
