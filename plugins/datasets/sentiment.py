"""The CMU sentiment metric set (``Task(..., metrics="cmu-sentiment")``): sentiment regression in [-3, 3], scored
with both binary conventions because published tables mix them.

- ``acc2_has0`` / ``f1_has0``: prediction >= 0 vs label >= 0; zero labels count as non-negative (the original
  MFM/MFN code).
- ``acc2_non0`` / ``f1_non0``: samples whose label is exactly 0 are dropped, then > 0 vs < 0 (MulT, MMSA).
- ``acc7``: clip both to [-3, 3], round half to even (``numpy.round``), compare classes; ``acc5`` clips to [-2, 2].
- ``mae`` (unclipped) and Pearson ``corr``.

F1 scores are weighted by class support, as scikit-learn's ``f1_score(average="weighted")``. The set and each metric's
direction are declared in this package's ``register_metrics`` hook (``mfm_bench.plugins.datasets``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mfm_bench.metrics import f1_scores, pearson, resampled_f1, resampled_pearson


def sentiment_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """All sentiment-regression metrics (see the module docstring for each convention)."""
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    out: dict[str, float] = {}
    p_has0, t_has0 = pred >= 0, true >= 0
    out["acc2_has0"] = float(np.mean(p_has0 == t_has0))
    out["f1_has0"] = f1_scores(t_has0, p_has0, np.array([False, True]))[0]
    nz = true != 0
    if nz.any():
        p_non0, t_non0 = pred[nz] > 0, true[nz] > 0
        out["acc2_non0"] = float(np.mean(p_non0 == t_non0))
        out["f1_non0"] = f1_scores(t_non0, p_non0, np.array([False, True]))[0]
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    out["acc7"] = float(np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(true, -3, 3))))
    out["acc5"] = float(np.mean(np.round(np.clip(pred, -2, 2)) == np.round(np.clip(true, -2, 2))))
    out["mae"] = float(np.mean(np.abs(pred - true)))
    out["corr"] = pearson(pred, true)
    return out


def cmu_sentiment(prediction: np.ndarray, target: np.ndarray, task: Any) -> dict[str, float]:
    """The metric-set function registered as ``cmu-sentiment``."""
    return sentiment_metrics(prediction, target)


def resampled_sentiment_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`sentiment_metrics` of each of R resamples at once: (R, n) or (R, n, 1) arrays -> {metric: (R,)}."""
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    pred, true = pred.reshape(pred.shape[0], -1), true.reshape(true.shape[0], -1)
    out: dict[str, np.ndarray] = {}
    p_has0, t_has0 = pred >= 0, true >= 0
    labels = np.array([False, True])
    out["acc2_has0"] = np.mean(p_has0 == t_has0, axis=1)
    out["f1_has0"] = resampled_f1(t_has0, p_has0, labels)[0]
    nz = true != 0
    count = nz.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.sum(((pred > 0) == (true > 0)) & nz, axis=1) / count
    out["acc2_non0"] = np.where(count > 0, acc, np.nan)
    out["f1_non0"] = np.where(count > 0, resampled_f1(true > 0, pred > 0, labels, valid=nz)[0], np.nan)
    out["acc7"] = np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(true, -3, 3)), axis=1)
    out["acc5"] = np.mean(np.round(np.clip(pred, -2, 2)) == np.round(np.clip(true, -2, 2)), axis=1)
    out["mae"] = np.mean(np.abs(pred - true), axis=1)
    out["corr"] = resampled_pearson(pred, true)
    return out


def resampled_cmu_sentiment(prediction: np.ndarray, target: np.ndarray, task: Any) -> dict[str, np.ndarray]:
    """The ``resampled`` form of the ``cmu-sentiment`` set, for the test-sample bootstrap."""
    return resampled_sentiment_metrics(prediction, target)


def sentiment_labels(labels: Any, where: Any) -> np.ndarray:
    """Sentiment scores as float32 (N,), checked to lie in [-3, 3]; ``where`` names the source in the error."""
    y = np.asarray(labels, dtype=np.float32)
    y = y.reshape(y.shape[0], -1)[:, 0]  # (N,), (N, 1) and MulT's (N, 1, 1) alike
    if np.abs(y).max(initial=0) > 3.0 + 1e-4:
        raise ValueError(f"{where}: sentiment labels outside [-3, 3] (max |y| = {np.abs(y).max():.3f})")
    return y
