"""``report.html``: one self-contained page (no network needed to view it) from an output folder's store.

It holds every leaderboard table (sortable: a few lines of inline JavaScript), the robustness curves of each dataset,
one section per run with its config, training curves (loss per epoch, train and valid), environment and, for MFM
runs explained with ``mfm-bench mfm-explain``, the heat map. Plots are matplotlib PNGs embedded as base64: the
project already depends on matplotlib, the leaderboard's HTML uses it, and a PNG renders the same in every browser
without bundling a charting library's JavaScript into each file.
"""

from __future__ import annotations

import base64
import html as h
import io
import json
from pathlib import Path
from typing import Any

from .io import atomic_write
from .render import STYLE, Board, Table, chart_png

SCRIPT = """
function sortTable(th){const table=th.closest('table'),col=[...th.parentNode.children].indexOf(th);
const asc=th.dataset.dir!=='asc';th.parentNode.querySelectorAll('th').forEach(x=>delete x.dataset.dir);
th.dataset.dir=asc?'asc':'desc';const key=td=>{const t=td.textContent.trim(),v=parseFloat(t);return isNaN(v)?t:v;};
const rows=[...table.tBodies[0].rows];rows.sort((a,b)=>{const x=key(a.cells[col]),y=key(b.cells[col]);
const c=(typeof x===typeof y)?(x<y?-1:x>y?1:0):(typeof x==='number'?-1:1);return asc?c:-c;});
rows.forEach(r=>table.tBodies[0].appendChild(r));}
document.querySelectorAll('table.sortable th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
"""
EXTRA_STYLE = (
    "body{max-width:1700px}.scroll{overflow-x:auto}td{white-space:nowrap}"
    "table.sortable th{cursor:pointer;background:#f4f4f4}th[data-dir=asc]::after{content:' ▲'}"
    "th[data-dir=desc]::after{content:' ▼'}details{margin:.5em 0}pre{background:#f8f8f8;padding:.5em;"
    "overflow:auto;max-height:24em}"
)


def table_html(t: Table, dataset: str) -> str:
    head = "".join(f"<th>{h.escape(str(c))}</th>" for c in t.headers)
    body = []
    for i, row in enumerate(t.rows):
        cells = [
            f"<td><b>{h.escape(str(c))}</b></td>" if (i, j) in t.best else f"<td>{h.escape(str(c))}</td>"
            for j, c in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<h3>{h.escape(t.heading)}</h3>\n<div class='scroll'><table class='sortable' "
        f"data-dataset='{h.escape(dataset)}' data-heading='{h.escape(t.heading)}'>\n<thead><tr>{head}</tr></thead>"
        "\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table></div>"
    )


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str) -> str:
    return f"<img class='chart' alt='{h.escape(alt)}' src='data:image/png;base64,{b64}'>"


def robustness_png(ds: str, curves: dict[str, list[Any]], metric: str) -> str:
    """One panel per sweep: the metric against severity, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), squeeze=False)
    for ax, (name, per_model) in zip(axes[0], curves.items()):
        for c in per_model:
            ax.plot([s for s, _ in c.points], [v for _, v in c.points], marker="o", label=c.model)
        ax.set_title(name, fontsize="small")
        ax.set_xlabel("severity")
        ax.set_ylabel(metric)
    axes[0][-1].legend(fontsize="small", bbox_to_anchor=(1.02, 1.0), loc="upper left")
    fig.suptitle(f"{ds}: robustness curves")
    return _png(fig)


def history_png(history: list[dict[str, Any]], title: str) -> str | None:
    """Loss per epoch, train and valid (every ``train_*`` / ``valid_*`` term of the history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in history for k in row if k.startswith(("train_", "valid_"))})
    if not history or not keys:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for k in keys:
        pts = [(row["epoch"], row[k]) for row in history if isinstance(row.get(k), (int, float))]
        ax.plot(
            [e for e, _ in pts],
            [v for _, v in pts],
            marker=".",
            label=k,
            linestyle="-" if k.startswith("train_") else "--",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small")
    return _png(fig)


def _dataset_sections(board: Board, data: dict[str, Any]) -> list[str]:
    from .leaderboard import _main_metric
    from .metric_catalog import catalog
    from .robustness import sweeps

    parts = []
    for ds, tables in board.datasets.items():
        parts.append(f"<h2 id='ds-{h.escape(ds)}'>{h.escape(ds)}</h2>")
        parts += [table_html(t, ds) for t in tables]
        if ds in board.charts:
            parts.append(_img(chart_png(board.charts[ds]), board.charts[ds].title))
        conds = data["datasets"][ds]
        main = _main_metric(conds.get("clean", {}), catalog())
        curves = sweeps(conds, main) if main else {}
        if curves:
            parts.append(_img(robustness_png(ds, curves, main), f"{ds}: robustness curves"))
    return parts


def _run_section(run: dict[str, Any], out: Path) -> str:
    run_dir = out / "runs" / run["id"]
    title = f"{run['dataset']} / {run['label']} / seed {run['seed']}"
    parts = [
        f"<section class='run' id='run-{run['id']}'><h3>{h.escape(title)} <code>{run['id']}</code>: "
        f"{h.escape(run['status'])}</h3>"
    ]
    if run.get("error"):
        parts.append(f"<pre>{h.escape(run['error'])}</pre>")
    hist = run_dir / "history.json"
    if hist.exists():
        try:
            history = json.loads(hist.read_text())
        except (OSError, ValueError) as e:  # one damaged run file must not cost the whole report
            history = None
            parts.append(f"<p>no training curves: {h.escape(str(hist))} cannot be read ({h.escape(str(e))})</p>")
        png = history_png(history, f"{title}: training curves") if isinstance(history, list) else None
        if png:
            parts.append(_img(png, f"{title}: training curves"))
    if (run_dir / "explain.png").exists():
        parts.append(
            "<h4>MFM explanation</h4>"
            + _img(base64.b64encode((run_dir / "explain.png").read_bytes()).decode(), f"{title}: MFM explain heat map")
        )
    for what, value in (("config", run["config"]), ("environment", run["environment"])):
        parts.append(
            f"<details><summary>{what}</summary><pre>{h.escape(json.dumps(value, indent=1, default=str))}"
            "</pre></details>"
        )
    return "\n".join(parts + ["</section>"])


def report_html(folder: str | Path) -> str:
    from .leaderboard import board, collect
    from .render import INTRO
    from .results import ResultStore

    out = Path(folder)
    with ResultStore(out, readonly=True) as store:
        data = collect(store)
        runs = store.runs()
        reference = store.get_meta("reference")  # the suite's report.reference: the paired table, as the leaderboard
    b = board(data, reference)
    intro = h.escape(INTRO.format(generated=b.generated)).replace("**bold**", "<b>bold</b>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mfm-bench report</title>",
        f"<style>{STYLE}{EXTRA_STYLE}</style></head><body>",
        f"<h1>{h.escape(b.title)}</h1>",
        f"<p>{intro} Click a column heading to sort.</p>",
    ]
    # what the leaderboard's notes say (mixed settings, data warnings, partial re-evaluations), the report says too
    parts += [f"<p class='note'><b>note:</b> {h.escape(n)}</p>" for n in b.notes]
    parts += _dataset_sections(b, data)
    if b.unfinished:
        parts.append("<h2>Runs not finished</h2><ul>")
        parts += [f"<li><code>{h.escape(i)}</code> {h.escape(t)}</li>" for i, t in b.unfinished]
        parts.append("</ul>")
    parts.append("<h2>Runs</h2>")
    parts += [_run_section(r, out) for r in runs]
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(folder: str | Path) -> Path:
    """Write ``report.html`` into ``folder`` (atomically) and return its path."""
    from .errors import storage_error

    path = Path(folder) / "report.html"
    page = report_html(folder)
    try:
        atomic_write(path, page)
    except OSError as e:  # the runs and the leaderboard are kept: one line saying what to fix, not a traceback
        # not the temporary file's name the error carries: the user knows the report's
        raise storage_error(OSError(e.errno, e.strerror), f"the report {path}") from None
    return path


def refresh_report(folder: str | Path, written: dict[str, Path]) -> Path | None:
    """After the leaderboard of ``folder`` was rewritten (``mfm-bench leaderboard``, ``evaluate``): rewrite its
    report.html too when it has one, or when the HTML leaderboard was written (as ``mfm-bench run`` does), so the
    report never shows older numbers than the tables next to it. Returns its path, or None when not written."""
    if not (Path(folder) / "report.html").exists() and "html" not in written:
        return None
    return write_report(folder)
