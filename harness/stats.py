"""Statistics of the leaderboard: confidence intervals over seeds, bootstrap intervals over test samples for a
single seed, and paired comparisons across seeds against a reference model.

- over seeds (n >= 2): mean ± std (sample std) and the 95% t interval ``mean ± t(0.975, n-1) * std / sqrt(n)``
  (``scipy.stats.t``);
- one seed: the percentile bootstrap over test samples, computed at evaluation time (the store keeps no
  per-sample predictions) and stored as the metrics ``ci95_lo:<metric>`` and ``ci95_hi:<metric>``;
- paired comparison: for each model and metric, the seeds both it and the reference ran, ``scipy.stats.ttest_rel``
  on the per-seed values (the same seed draws the same data split and initialisation scheme for both). A
  difference with p >= 0.05 (or fewer than 2 shared seeds) is marked as not distinguishable from noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

LEVEL = 0.95
ALPHA = 1.0 - LEVEL
#: prefixes of the stored bootstrap bounds of a metric
CI_LO, CI_HI = "ci95_lo:", "ci95_hi:"


def seed_ci(values: list[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The t interval of the mean of ``values`` (one per seed); None with fewer than two finite values."""
    from scipy import stats

    # sorted: the same runs give the same interval whatever order they were stored in (merged shards, resumes)
    vals = np.asarray(sorted(v for v in values if v is not None and not math.isnan(v)), dtype=np.float64)
    if len(vals) < 2:
        return None
    sem = vals.std(ddof=1) / math.sqrt(len(vals))
    if sem == 0:
        return float(vals.mean()), float(vals.mean())
    lo, hi = stats.t.interval(level, len(vals) - 1, loc=vals.mean(), scale=sem)
    return float(lo), float(hi)


def bootstrap_ci(
    metrics: Callable[[np.ndarray], dict[str, float]],
    n: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of every metric: ``metrics(idx)`` scores the samples ``idx`` (drawn with
    replacement from ``range(n)``). Metrics undefined on a resample (NaN) are left out of that metric's draws."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for k, v in metrics(rng.integers(0, n, size=n)).items():
            if v is not None and not math.isnan(v):
                draws.setdefault(k, []).append(float(v))
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    return {
        k: (float(np.percentile(v, q[0])), float(np.percentile(v, q[1])))
        for k, v in draws.items()
        if len(v) >= max(10, resamples // 2)
    }


def paired(model: dict[int, float], reference: dict[int, float]) -> dict[str, Any]:
    """Paired comparison over the seeds both ran: mean difference (model - reference), p-value, n, and
    ``noise`` (True when the difference is not distinguishable from noise at the 5% level)."""
    from scipy import stats

    shared = sorted(s for s in model if s in reference and not math.isnan(model[s]) and not math.isnan(reference[s]))
    a = np.asarray([model[s] for s in shared], dtype=np.float64)
    b = np.asarray([reference[s] for s in shared], dtype=np.float64)
    diff = float((a - b).mean()) if shared else float("nan")
    if len(shared) < 2:
        return {"diff": diff, "p": float("nan"), "n": len(shared), "noise": True}
    if np.allclose(a - b, (a - b)[0]):  # constant differences: the t statistic is undefined
        p = 1.0 if (a - b)[0] == 0 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"diff": diff, "p": p, "n": len(shared), "noise": not p < ALPHA}
