"""Robustness summaries of a leaderboard: for each sweep (a kind of imperfection on some modalities, measured at
several severities), the main metric against severity, the area under that curve and MultiBench's relative and
effective robustness (Liang et al., 2021; docs/evaluation.md gives the definitions).

Reads only collected numbers (``mfm_bench.leaderboard.collect``'s ``datasets`` entry); imports nothing heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .conditions import condition_from_name, severity_text


@dataclass
class Sweep:
    """One model's curve on one sweep: ``points`` are (severity, mean metric), severity 0 being the clean split."""

    name: str
    model: str
    points: list[tuple[float, float]]

    @property
    def auc(self) -> float:
        """Mean level of the curve: the trapezoid area over [0, max severity] divided by that span."""
        span = self.points[-1][0] - self.points[0][0]
        return self.relative / span if span > 0 else float("nan")

    @property
    def relative(self) -> float:
        """MultiBench relative robustness: the trapezoid area under metric-vs-severity."""
        return sum((s1 - s0) * (v0 + v1) / 2 for (s0, v0), (s1, v1) in zip(self.points, self.points[1:]))

    def effective(self, reference: Sweep | None) -> float:
        """MultiBench effective robustness: sum over the severities of f(s) - (ref(s) + f(0) - ref(0)), the
        reference curve shifted to start where this one starts (MultiBench's reference is late fusion)."""
        if reference is None or [s for s, _ in reference.points] != [s for s, _ in self.points]:
            return float("nan")
        f0, r0 = self.points[0][1], reference.points[0][1]
        return sum(v - (r + f0 - r0) for (_, v), (_, r) in zip(self.points, reference.points))


def sweeps(conds: dict[str, Any], metric: str) -> dict[str, list[Sweep]]:
    """{sweep name: one :class:`Sweep` per model} for every sweep with at least one measured severity."""
    clean = conds.get("clean", {})
    levels: dict[str, list[tuple[float, str]]] = {}
    for name in conds:
        c = condition_from_name(name)
        if c is not None and c.kind != "clean":
            levels.setdefault(c.sweep, []).append((c.severity, name))
    out: dict[str, list[Sweep]] = {}
    for sweep, pts in sorted(levels.items()):
        curves = []
        for label, row in clean.items():
            base = row["metrics"].get(metric, {}).get("mean", math.nan)
            points = [(0.0, base)] + [
                (s, conds[n].get(label, {}).get("metrics", {}).get(metric, {}).get("mean", math.nan))
                for s, n in sorted(pts)
            ]
            curves.append(Sweep(sweep, label, points))
        out[sweep] = curves
    return out


def summary_rows(curves: dict[str, list[Sweep]], reference: str | None = None) -> list[list[Any]]:
    """Rows (sweep, model, severities, AUC, relative, effective) with the reference model's curve as baseline
    (default: the first model)."""
    rows = []
    for name, per_model in curves.items():
        ref = next((c for c in per_model if c.model == reference), per_model[0] if per_model else None)
        for c in per_model:
            sev = ", ".join(severity_text(s) for s, _ in c.points[1:])
            rows.append([name, c.model, sev, c.auc, c.relative, c.effective(ref)])
    return rows
