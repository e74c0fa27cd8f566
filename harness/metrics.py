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
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
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
