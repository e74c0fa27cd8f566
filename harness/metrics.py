"""Task metrics and the declarations that say how to read each metric.

Every metric that reaches the result store is *declared* by whoever produces it (:class:`Metric`): its name
(or a prefix such as ``probe_*``), whether higher is better, and the leaderboard section it belongs to. The core
declares the generic metrics it computes itself (:data:`CORE`); plugins declare theirs through the
``register_metrics`` hook, which also registers *metric sets*: named metric functions that a task selects with
``Task(..., metrics="NAME")`` (a sentiment dataset's binary/7-class accuracies, say).

Without a metric set the task kind chooses: ``regression`` -> mae, mse, Pearson corr; ``classification`` -> acc,
support-weighted and macro F1 (as scikit-learn's ``f1_score``); ``multi_regression`` -> mae and corr averaged over
targets, plus ``<target>/mae`` and ``<target>/corr``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .contracts import Task
from .metric_catalog import CORE, Metric, MetricSet, catalog, declaration, higher_is_better, metric_set

__all__ = [
    "Metric",
    "MetricSet",
    "CORE",
    "catalog",
    "declaration",
    "higher_is_better",
    "metric_set",
    "f1_scores",
    "pearson",
    "regression_metrics",
    "classification_metrics",
    "compute_metrics",
    "resampled_metrics",
]


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None = None) -> tuple[float, float]:
    """(weighted F1, macro F1) over ``labels`` (default: classes present in y_true or y_pred).

    A class with no predicted and no true sample contributes F1 = 0, as scikit-learn does (zero_division=0).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = np.union1d(y_true, y_pred)
    f1s, support = [], []
    for c in labels:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        f1s.append(0.0 if denom == 0 else 2 * tp / denom)
        support.append(np.sum(y_true == c))
    f1s_a, sup = np.array(f1s, dtype=float), np.array(support, dtype=float)
    weighted = float((f1s_a * sup).sum() / sup.sum()) if sup.sum() > 0 else 0.0
    macro = float(f1s_a.mean()) if len(f1s_a) else 0.0
    return weighted, macro


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN for fewer than two samples or a constant input."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    # constant: max == min exactly (a constant's std can come out at 1e-17 from rounding, and its "correlation" +-1)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    return {
        "mae": float(np.mean(np.abs(pred - true))),
        "mse": float(np.mean((pred - true) ** 2)),
        "corr": pearson(pred, true),
    }


def classification_metrics(logits: np.ndarray, true: np.ndarray, n_classes: int) -> dict[str, float]:
    pred = np.asarray(logits).argmax(-1)
    true = np.asarray(true).astype(int)
    weighted, macro = f1_scores(true, pred, np.arange(n_classes))
    return {"acc": float(np.mean(pred == true)), "f1_weighted": weighted, "f1_macro": macro}


def multi_regression_metrics(pred: np.ndarray, true: np.ndarray, targets: tuple[str, ...]) -> dict[str, float]:
    out = {}
    per = [regression_metrics(pred[:, k], true[:, k]) for k in range(true.shape[1])]
    for key in ("mae", "corr"):
        out[key] = float(np.nanmean([p[key] for p in per]))
    for name, p in zip(targets, per):
        out[f"{name}/mae"] = p["mae"]
        out[f"{name}/corr"] = p["corr"]
    return out


# -- the same metrics over many resamples at once (the test-sample bootstrap) ---------------------------------------
# Each takes arrays of R resamples, (R, n) or (R, n, ...), and returns {metric: array (R,)} equal to the per-sample
# function above applied to each resample (tests/unit/test_metrics.py checks it); NaN where that gives NaN.


def resampled_f1(
    y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(weighted F1, macro F1) of each row, as :func:`f1_scores` with ``labels`` (not empty); ``valid`` (R, n)
    bool, when given, counts only its True entries (as :func:`f1_scores` of each row's valid entries)."""
    f1s, support = [], []
    for c in labels:
        is_t, is_p = y_true == c, y_pred == c
        if valid is not None:
            is_t, is_p = is_t & valid, is_p & valid
        tp = np.sum(is_t & is_p, axis=1)
        fp = np.sum(is_p, axis=1) - tp
        fn = np.sum(is_t, axis=1) - tp
        denom = 2 * tp + fp + fn
        f1s.append(np.where(denom == 0, 0.0, 2 * tp / np.maximum(denom, 1)))
        support.append(np.sum(is_t, axis=1))
    f1 = np.stack(f1s, axis=1).astype(float)  # (R, classes)
    sup = np.stack(support, axis=1).astype(float)
    total = sup.sum(1)
    weighted = np.where(total > 0, (f1 * sup).sum(1) / np.maximum(total, 1), 0.0)
    return weighted, f1.mean(1)


def resampled_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair, as :func:`pearson` (NaN for fewer than two samples or a constant
    row)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape[1] < 2:
        return np.full(a.shape[0], np.nan)
    da, db = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (da * db).sum(1) / np.sqrt((da * da).sum(1) * (db * db).sum(1))
    r = np.clip(r, -1.0, 1.0)  # as np.corrcoef
    return np.where((np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0), np.nan, r)


def resampled_regression(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    pred, true = _rows(pred), _rows(true)
    return {
        "mae": np.mean(np.abs(pred - true), axis=1),
        "mse": np.mean((pred - true) ** 2, axis=1),
        "corr": resampled_pearson(pred, true),
    }


def resampled_classification(logits: np.ndarray, true: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    pred = np.asarray(logits).argmax(-1)  # (R, n)
    true = np.asarray(true).astype(int).reshape(pred.shape)
    weighted, macro = resampled_f1(true, pred, np.arange(n_classes))
    return {"acc": np.mean(pred == true, axis=1), "f1_weighted": weighted, "f1_macro": macro}


def resampled_multi_regression(pred: np.ndarray, true: np.ndarray, targets: tuple[str, ...]) -> dict[str, np.ndarray]:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    per = [resampled_regression(pred[..., k], true[..., k]) for k in range(true.shape[-1])]
    out = {key: np.nanmean(np.stack([p[key] for p in per]), axis=0) for key in ("mae", "corr")}
    for name, p in zip(targets, per):
        out[f"{name}/mae"] = p["mae"]
        out[f"{name}/corr"] = p["corr"]
    return out


def resampled_metrics(task: Task) -> Any:
    """``f(prediction, target)`` scoring R resamples at once ((R, n, ...) arrays -> {metric: (R,)}), as
    :func:`compute_metrics` scores one; None for a plugin's metric set registered without one (the bootstrap then
    calls :func:`compute_metrics` once per resample)."""
    if task.metrics:
        batched = metric_set(task.metrics).resampled
        return None if batched is None else (lambda pred, true: batched(pred, true, task))
    if task.kind == "classification":
        return lambda pred, true: resampled_classification(pred, true, int(task.n_classes))  # type: ignore[arg-type]
    if task.kind == "multi_regression":
        return lambda pred, true: resampled_multi_regression(pred, true, task.targets)
    return resampled_regression


def _rows(x: np.ndarray) -> np.ndarray:
    """(R, n, ...) -> (R, n * ...) in float, as the per-sample functions' ``ravel``."""
    x = np.asarray(x, float)
    return x.reshape(x.shape[0], -1)


def compute_metrics(task: Task, prediction: Any, target: Any) -> dict[str, float]:
    """Metrics of the task's metric set when it names one, else those of its kind (see the module docstring).

    ``prediction`` and ``target`` are tensors or arrays of the task's shapes.
    """
    pred = _np(prediction)
    true = _np(target)
    if task.metrics:
        return metric_set(task.metrics).function(pred, true, task)
    if task.kind == "classification":
        return classification_metrics(pred, true, int(task.n_classes))  # type: ignore[arg-type]
    if task.kind == "multi_regression":
        return multi_regression_metrics(pred, true, task.targets)
    return regression_metrics(pred, true)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)
