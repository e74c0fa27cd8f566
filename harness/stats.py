"""Statistics of the leaderboard: confidence intervals over seeds, bootstrap intervals over test samples for a
single seed, and paired comparisons across seeds against a reference model.

- over seeds (n >= 2): mean ± std (sample std) and the 95% t interval ``mean ± t(0.975, n-1) * std / sqrt(n)``
  (the t quantile from ``scipy.special.stdtrit``, which ``scipy.stats.t.ppf`` calls);
- one seed: the percentile bootstrap over test samples, computed at evaluation time (the store keeps no
  per-sample predictions) and stored as the metrics ``ci95_lo:<metric>`` and ``ci95_hi:<metric>``;
- paired comparison: for each model and metric, the seeds both it and the reference ran, the paired t-test
  (``scipy.stats.ttest_rel``'s statistic and two-sided p-value) on the per-seed values (the same seed draws the
  same data split and initialisation scheme for both); differences all equal (a constant shift, where t is
  undefined) get the exact sign test's p, 2 * 0.5**n for n seeds (:func:`paired_diff_p`). A difference with
  p >= 0.05 (or fewer than 2 shared seeds) is marked as not distinguishable from noise.

The t distribution comes from ``scipy.special`` (``stdtrit``, ``stdtr``) rather than ``scipy.stats``: importing
``scipy.stats`` took 0.56 s on the 2-core machine of docs/performance.md, ``scipy.special`` 0.16 s, and every
``mfm-bench run`` writes a leaderboard. tests/unit/test_stats.py checks both against ``scipy.stats``.
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


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (``scipy.stats.t.ppf(q, df)``)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def paired_t_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test on the differences ``diffs`` (``scipy.stats.ttest_rel(a, b).pvalue``
    with ``diffs = a - b``); they must not all be equal."""
    from scipy.special import stdtr

    n = len(diffs)
    t = diffs.mean() / (diffs.std(ddof=1) / math.sqrt(n))
    return float(2.0 * stdtr(n - 1, -abs(t)))


def paired_diff_p(diffs: np.ndarray) -> float | None:
    """Two-sided p-value of a paired comparison from the per-seed differences: the paired t-test's
    (:func:`paired_t_p`) when they vary; None with fewer than two.

    All differences equal (a constant shift: every seed moved by the same amount) leave the t statistic undefined:
    ``scipy.stats.ttest_rel`` answers t = inf and p = 0 whatever the number of seeds, or, with the last bits of
    the subtraction differing, a meaningless p near 0. Such differences are then tested with the exact sign test
    (``scipy.stats.binomtest``, every seed on the same side), which makes no assumption on their spread:
    p = 2 * 0.5**n (0.5 for 2 seeds, 0.0625 for 5, 0.031 for 6), the smallest p any paired test that does not
    assume a distribution (the sign-flip permutation test) can give with n seeds; all differences zero: p = 1."""
    diffs = np.asarray(diffs, dtype=np.float64)
    n = len(diffs)
    if n < 2:
        return None
    scale = max(1.0, float(np.abs(diffs).max()))
    if float(diffs.max() - diffs.min()) <= 1e-12 * scale:
        if float(np.abs(diffs).max()) <= 1e-12:
            return 1.0
        from scipy.stats import binomtest  # scipy.stats only here: it is slow to import (see above)

        return float(binomtest(n, n, 0.5).pvalue)
    return paired_t_p(diffs)


def seed_ci(values: list[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The t interval of the mean of ``values`` (one per seed); None with fewer than two finite values."""
    # sorted: the same runs give the same interval whatever order they were stored in (merged shards, resumes)
    vals = np.asarray(sorted(v for v in values if v is not None and not math.isnan(v)), dtype=np.float64)
    if len(vals) < 2:
        return None
    sem = vals.std(ddof=1) / math.sqrt(len(vals))
    if sem == 0:
        return float(vals.mean()), float(vals.mean())
    half = t_quantile((1.0 + level) / 2.0, len(vals) - 1) * sem
    mean = vals.mean()
    return float(mean - half), float(mean + half)


#: indices per block of resamples scored at once (``resampled``): 256 KiB per float64 array of a block, so that
#: its temporaries stay in a core's cache. 1,000 resamples of the sentiment metrics on the 2-core machine of
#: docs/performance.md, against one call per resample: 0.01 s against 0.14 to 0.20 s for 100 samples, 0.105 s
#: against 0.23 to 0.32 s for CMU-MOSEI's 4,659; blocks of 8,192 or 131,072 indices were slower at 4,659 than
#: one call per resample.
BLOCK = 32_768


def bootstrap_ci(
    metrics: Callable[[np.ndarray], dict[str, float]],
    n: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = LEVEL,
    resampled: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of every metric: ``metrics(idx)`` scores the samples ``idx`` (drawn with
    replacement from ``range(n)``). Metrics undefined on a resample (NaN) are left out of that metric's draws.

    ``resampled(idx)``, when given, scores many resamples at once: ``idx`` (R, n) -> ``{metric: (R,) array}``,
    the values ``metrics`` gives for each row. The draws are the same either way (one ``integers`` call per
    resample, in order), so the intervals are too, up to the last bits of a metric's arithmetic (:data:`BLOCK`
    has the time it saves)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    if resampled is None:
        for _ in range(resamples):
            for k, v in metrics(rng.integers(0, n, size=n)).items():
                if v is not None and not math.isnan(v):
                    draws.setdefault(k, []).append(float(v))
    else:
        per_block = max(1, BLOCK // max(n, 1))
        for start in range(0, resamples, per_block):
            idx = np.stack([rng.integers(0, n, size=n) for _ in range(min(per_block, resamples - start))])
            for k, v in resampled(idx).items():
                v = np.asarray(v, dtype=np.float64)
                draws.setdefault(k, []).extend(v[~np.isnan(v)].tolist())
    q = (100 * (1 - level) / 2, 100 * (1 + level) / 2)
    return {
        k: (float(np.percentile(v, q[0])), float(np.percentile(v, q[1])))
        for k, v in draws.items()
        if len(v) >= max(10, resamples // 2)
    }


def paired(model: dict[int, float], reference: dict[int, float]) -> dict[str, Any]:
    """Paired comparison over the seeds both ran: mean difference (model - reference), p-value, n, and
    ``noise`` (True when the difference is not distinguishable from noise at the 5% level)."""
    shared = sorted(s for s in model if s in reference and not math.isnan(model[s]) and not math.isnan(reference[s]))
    a = np.asarray([model[s] for s in shared], dtype=np.float64)
    b = np.asarray([reference[s] for s in shared], dtype=np.float64)
    diff = float((a - b).mean()) if shared else float("nan")
    if len(shared) < 2:
        return {"diff": diff, "p": float("nan"), "n": len(shared), "noise": True}
    p = paired_diff_p(a - b)  # a constant shift: the exact sign test (the t statistic is undefined)
    return {"diff": diff, "p": p, "n": len(shared), "noise": not p < ALPHA}
