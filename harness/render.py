"""Render a leaderboard (:class:`Board`, built by ``mfm_bench.leaderboard``) to Markdown and HTML, and its
collected numbers to CSV and JSON. Every table of the board appears in both Markdown and HTML.

Imports nothing heavy at module level: ``FORMATS`` is read by the CLI's ``--help`` and by suite validation.
"""

from __future__ import annotations

import csv
import html as h
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

#: Every report format, and those written when a suite or the CLI names none.
FORMATS: tuple[str, ...] = ("markdown", "csv", "json", "html")
DEFAULT_FORMATS: tuple[str, ...] = ("markdown", "csv", "json")
#: File written for each format.
FILES = {"markdown": "leaderboard.md", "csv": "leaderboard.csv", "json": "leaderboard.json", "html": "leaderboard.html"}

INTRO = (
    "Mean ± std over seeds on the test split, then the 95% confidence interval in brackets (t over seeds; "
    "with one seed, the bootstrap over test samples); the best mean per column is in **bold** (↑ higher is "
    "better, ↓ lower). Generated {generated}."
)


@dataclass
class Table:
    """One table: a heading, column headers, rows of cells (text or numbers), the (row, column) cells to bold."""

    heading: str
    headers: list[str]
    rows: list[list[Any]]
    best: set[tuple[int, int]] = field(default_factory=set)


@dataclass
class Chart:
    """A grouped bar chart: one group per model, one bar per series (condition): (name, means, stds)."""

    title: str
    ylabel: str
    groups: list[str]
    series: list[tuple[str, list[float], list[float]]]


@dataclass
class Board:
    """The whole leaderboard: tables (and an optional chart) per dataset, the failed runs as rows of
    :data:`FAILED_HEADERS` (never averaged, ranked or bolded), the runs still running or interrupted as
    (run id, description), and notes a reader must see (mixed settings, data warnings)."""

    generated: str
    datasets: dict[str, list[Table]]
    charts: dict[str, Chart] = field(default_factory=dict)
    unfinished: list[tuple[str, str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    title: str = "Leaderboard"


FAILED_HEADERS = ["run", "dataset", "model", "seed", "reason"]
FAILED_TITLE = "Failed runs (not in the tables above)"


def md_cell(value: Any) -> str:
    """A Markdown table cell: ``|`` escaped, line breaks as spaces (either would break the table)."""
    return " ".join(str(value).split("\n")).replace("\r", " ").replace("|", "\\|")


def _md_table(
    headers: list[str], rows: list[list[Any]], best: set[tuple[int, int]] = frozenset(), text: bool = False
) -> str:
    """A GitHub table; numbers right-aligned unless ``text`` (every column left-aligned)."""
    from tabulate import tabulate

    rows = [
        [f"**{md_cell(c)}**" if (i, j) in best else md_cell(c) for j, c in enumerate(row)] for i, row in enumerate(rows)
    ]
    # cells are already formatted: no re-parsing ("1.000" stays "1.000"); numbers right-aligned
    align = ("left", *[("left" if text else "right")] * (len(headers) - 1))
    return tabulate(
        rows, headers=[md_cell(x) for x in headers], tablefmt="github", disable_numparse=True, colalign=align
    )


def markdown(board: Board) -> str:
    lines = [f"# {md_cell(board.title)}", "", INTRO.format(generated=board.generated), ""]
    lines += [f"> **note:** {md_cell(n)}\n" for n in board.notes]
    for ds, tables in board.datasets.items():
        lines += [f"## {md_cell(ds)}", ""]
        for t in tables:
            lines += [f"### {md_cell(t.heading)}", "", _md_table(t.headers, t.rows, t.best), ""]
    if board.failed:
        lines += [f"## {FAILED_TITLE}", "", _md_table(FAILED_HEADERS, board.failed, text=True), ""]
    if board.unfinished:
        lines += ["## Runs not finished", ""]
        lines += [f"- `{run_id}` {md_cell(text)}" for run_id, text in board.unfinished]
        lines.append("")
    return "\n".join(lines)


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}"
    "td:first-child,th:first-child{text-align:left}td.reason{white-space:normal;text-align:left}"
    ".note{background:#fff3cd;padding:4px 8px}img{max-width:100%}"
)


def html_table(t: Table, wrap_last: bool = False) -> str:
    """A table; ``wrap_last``: the last column is free text that may wrap (failure reasons)."""
    head = "".join(f"<th>{h.escape(str(c))}</th>" for c in t.headers)
    body = []
    for i, row in enumerate(t.rows):
        cells = [f"<b>{h.escape(str(c))}</b>" if (i, j) in t.best else h.escape(str(c)) for j, c in enumerate(row)]
        tds = [
            f"<td class='reason'>{c}</td>" if wrap_last and j == len(cells) - 1 else f"<td>{c}</td>"
            for j, c in enumerate(cells)
        ]
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (
        f"<h3>{h.escape(t.heading)}</h3>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody>\n</table>"
    )


def html(board: Board) -> str:
    """A self-contained page: every table of the Markdown, bold best values, a chart per dataset (embedded PNG)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mfm-bench leaderboard</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{h.escape(board.title)}</h1>",
        f"<p>{h.escape(INTRO.format(generated=board.generated)).replace('**bold**', '<b>bold</b>')}</p>",
    ]
    parts += [f"<p class='note'><b>note:</b> {h.escape(n)}</p>" for n in board.notes]
    for ds, tables in board.datasets.items():
        parts.append(f"<h2>{h.escape(ds)}</h2>")
        parts += [html_table(t) for t in tables]
        if ds in board.charts:
            chart = board.charts[ds]
            parts.append(f"<img alt='{h.escape(chart.title)}' src='data:image/png;base64,{chart_png(chart)}'>")
    if board.failed:
        parts += [
            f"<h2>{h.escape(FAILED_TITLE)}</h2>",
            html_table(Table("", FAILED_HEADERS, board.failed), wrap_last=True).split("\n", 1)[1],
        ]
    if board.unfinished:
        parts.append("<h2>Runs not finished</h2><ul>")
        parts += [f"<li><code>{h.escape(run_id)}</code> {h.escape(text)}</li>" for run_id, text in board.unfinished]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def chart_png(chart: Chart) -> str:
    """The chart drawn by matplotlib, as base64 PNG."""
    import base64

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(chart.series)
    fig, ax = plt.subplots(figsize=(min(12.0, 4 + 0.3 * len(chart.groups) * n), 4.5))
    width = 0.8 / n
    for j, (name, means, stds) in enumerate(chart.series):
        ax.bar([i + j * width for i in range(len(chart.groups))], means, width, yerr=stds, label=name, capsize=2)
    ax.set_xticks([i + width * (n - 1) / 2 for i in range(len(chart.groups))], chart.groups, rotation=20, ha="right")
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title)
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1.0), loc="upper left")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


#: The csv's columns after the metrics (before ``run`` and ``error``), filled on the lines whose numbers come from
#: ``mfm-bench evaluate`` (the json's ``reevaluated``): how many of the model's finished runs were re-evaluated, of
#: how many, and by which evaluations (ids separated by spaces). ``reevaluated_runs`` < ``reevaluated_of`` is a
#: partial re-evaluation: that line's numbers are over those runs' seeds only.
REEVALUATED_COLUMNS = ["reevaluated_runs", "reevaluated_of", "reevaluations"]


def to_csv(data: dict[str, Any], order: list[str]) -> str:
    """One line per dataset, condition and model: the mean, std and 95% CI (``<m>_ci_low``, ``<m>_ci_high``: the
    json's ``ci``, empty where it has none) of every metric (``order`` first), and :data:`REEVALUATED_COLUMNS` on
    the lines with re-evaluated numbers; then one line per failed run (status ``failed``, its seed in ``seeds``, its
    run id and error)."""
    rows, metrics = [], []
    for ds, conds in data["datasets"].items():
        for cond, models in conds.items():
            for label, r in models.items():
                row = {"dataset": ds, "condition": cond, "model": label, "seeds": r["seeds"]}
                got = r.get("reevaluated")
                if got:
                    row |= dict(zip(REEVALUATED_COLUMNS, (got["runs"], got["of"], " ".join(got["evaluations"]))))
                for m, st in r["metrics"].items():
                    row[m], row[f"{m}_std"] = st["mean"], st["std"]
                    if st.get("ci"):
                        row[f"{m}_ci_low"], row[f"{m}_ci_high"] = st["ci"]
                    if m not in metrics:
                        metrics.append(m)
                rows.append(row)
    for r in data["runs"]:  # failed runs: their own lines, no metrics
        if r["status"] == "failed":
            rows.append(
                {
                    "dataset": r["dataset"],
                    "condition": "",
                    "model": r["label"],
                    "seeds": r["seed"],
                    "status": "failed",
                    "run": r["id"],
                    "error": r["error"],
                }
            )
    ordered = [m for m in order if m in metrics] + sorted(m for m in metrics if m not in order)
    columns = ("{}", "{}_std", "{}_ci_low", "{}_ci_high")
    header = ["dataset", "condition", "model", "seeds", "status"] + [c.format(m) for m in ordered for c in columns]
    header += [*REEVALUATED_COLUMNS, "run", "error"]
    rows = [{"status": "finished", **row} for row in rows]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_json(data: dict[str, Any]) -> str:
    """The collected numbers as JSON, NaN written as null; ``failed`` lists the failed runs apart."""
    failed = [r for r in data["runs"] if r["status"] == "failed"]
    return json.dumps(_nan_to_none({**data, "failed": failed}), indent=2)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x
