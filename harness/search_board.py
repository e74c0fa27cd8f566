"""The leaderboard's view of hyperparameter searches (the store's ``searches`` table).

Trials that were not chosen stay in the store but leave the model rows; a searched model's row is its chosen
configuration retrained on the suite's seeds, and a table per dataset says what was chosen, on which
validation metric, from how many trials (and how many of them the search's pruner stopped). A
``test-oracle`` search adds a row ``LABEL (test-oracle)`` holding each metric's best test value over all trials
(pruned ones included), and a warning row: those numbers were selected on test.
"""

from __future__ import annotations

import json
from typing import Any

from .render import Table

ORACLE_WARNING = (
    "WARNING: test-oracle selection (the original MFM protocol): each metric is its best test value "
    "over all trials' runs (one run each: seeds 1), chosen on test; optimistic, not comparable with "
    "validation-selected rows"
)


def hidden_runs(runs: list[dict[str, Any]], searches: list[dict[str, Any]]) -> set[str]:
    """Ids of search runs that are no searched model's chosen configuration: not leaderboard rows. Those are the
    trials not chosen, and the final runs of an earlier choice (a search grown by a larger ``n_trials`` can
    choose another configuration; its earlier final runs stay in the store)."""
    shown = {rid for s in searches for rid in s.get("final_ids", [])}
    chosen = {(s["dataset"], s["label"]): s.get("chosen") for s in searches}
    hidden = set()
    for r in runs:
        search = r["config"].get("search") or {}
        if search.get("role") == "trial" and r["id"] not in shown:
            hidden.add(r["id"])
        elif search.get("role") == "final" and r["id"] not in shown:
            key = (search.get("dataset"), search.get("label"))
            if key in chosen and chosen[key] is not None and search.get("values") != chosen[key]:
                hidden.add(r["id"])
    return hidden


def oracle_rows(store: Any, searches: list[dict[str, Any]], table: dict[str, Any]) -> None:
    """Add a ``LABEL (test-oracle)`` row (best test value of each metric over the trials) for each such search."""
    for s in searches:
        if s["selection"] != "test-oracle":
            continue
        best: dict[tuple[str, str], tuple[float, bool | None]] = {}
        trials = set(s.get("trial_ids", []))
        for m in store.metrics():
            if m["run_id"] not in trials or m["split"] != "test" or m["value"] is None:
                continue
            hib = None if m["higher_is_better"] is None else bool(m["higher_is_better"])
            key, old = (m["condition"], m["metric"]), best.get((m["condition"], m["metric"]))
            if old is None or (hib is True and m["value"] > old[0]) or (hib is False and m["value"] < old[0]):
                best[key] = (m["value"], hib)
        for (cond, metric), (value, hib) in best.items():
            row = (
                table.setdefault(s["dataset"], {})
                .setdefault(cond, {})
                # each cell is one run's value (n 1), the best of the trials' runs: one seed, not the trial count
                .setdefault(f"{s['label']} (test-oracle)", {"seeds": 1, "metrics": {}})
            )
            row["metrics"][metric] = {"mean": value, "std": 0.0, "n": 1, "higher_is_better": hib}


def search_table(searches: list[dict[str, Any]], dataset: str) -> Table | None:
    """What each search of ``dataset`` chose, on which metric, from how many trials (and the oracle warning)."""
    rows = []
    for s in searches:
        if s["dataset"] != dataset:
            continue
        direction = "↑" if s["higher_is_better"] else "↓"
        metric = f"{s['metric']} {direction} ({s['split']})"
        if s["selection"] == "test-oracle":  # the search's metric only guided the sampler
            metric = f"each metric's best (test); trials sampled on {metric}"
        chosen = json.dumps(s.get("chosen"), sort_keys=True) if s.get("chosen") else "-"
        value = f"{s['chosen_value']:.4f}" if s.get("chosen_value") is not None else "-"
        rows.append(
            [
                s["label"],
                s["selection"],
                metric,
                s["trials"],
                f"{s['complete']} ({s['pruned']} pruned)" if s.get("pruned") else s["complete"],
                chosen,
                value,
            ]
        )
        if s["selection"] == "test-oracle":
            rows.append([f"⚠ {s['label']} (test-oracle)", ORACLE_WARNING, "", "", "", "", ""])
    if not rows:
        return None
    return Table(
        "hyperparameter search: the chosen configuration of each searched model",
        ["model", "selection", "metric", "trials", "complete", "chosen", "valid value"],
        rows,
    )
