"""Task metrics with the field's conventions.

Sentiment regression in [-3, 3] reports both binary conventions because published tables mix them:

- ``acc2_has0`` / ``f1_has0``: prediction >= 0 vs label >= 0; zero labels count as non-negative (the original
  MFM/MFN code).
- ``acc2_non0`` / ``f1_non0``: samples whose label is exactly 0 are dropped, then > 0 vs < 0 (MulT, MMSA).
- ``acc7``: clip both to [-3, 3], round half to even (``numpy.round``), compare classes; ``acc5`` clips to [-2, 2].
- ``mae`` (unclipped) and Pearson ``corr``.

F1 scores are weighted by class support, as scikit-learn's ``f1_score(average="weighted")``.
Every metric declares whether higher is better in :data:`HIGHER_IS_BETTER`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .contracts import Task

#: metric name (or prefix ending in "_") -> True when higher is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "acc2_has0": True, "f1_has0": True, "acc2_non0": True, "f1_non0": True, "acc7": True, "acc5": True,
    "mae": False, "corr": True, "acc": True, "f1_weighted": True, "f1_macro": True, "mse": False,
    "acc2": True, "f1": True, "params": False, "train_samples_per_sec": True, "train_seconds": False,
    "best_epoch": False, "probe_": True, "recon_": False,
}


def higher_is_better(metric: str) -> bool | None:
    """True/False for a known metric (exact name, a known prefix, or ``<target>/<metric>``); None when unknown."""
    base = metric.split("/")[-1]
    if base in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[base]
    for key, value in HIGHER_IS_BETTER.items():
        if key.endswith("_") and base.startswith(key):
            return value
    return None


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
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


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


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    return {"mae": float(np.mean(np.abs(pred - true))), "mse": float(np.mean((pred - true) ** 2)), "corr": pearson(pred, true)}


def classification_metrics(logits: np.ndarray, true: np.ndarray, n_classes: int) -> dict[str, float]:
    pred = np.asarray(logits).argmax(-1)
    true = np.asarray(true).astype(int)
    weighted, macro = f1_scores(true, pred, np.arange(n_classes))
    return {"acc": float(np.mean(pred == true)), "f1_weighted": weighted, "f1_macro": macro}


def compute_metrics(task: Task, prediction: Any, target: Any) -> dict[str, float]:
    """Metrics chosen from the task. ``prediction`` and ``target`` are tensors or arrays of the task's shapes."""
    pred = _np(prediction)
    true = _np(target)
    if task.kind == "classification":
        return classification_metrics(pred, true, int(task.n_classes))  # type: ignore[arg-type]
    if task.kind == "multi_regression":
        out = {}
        per = [regression_metrics(pred[:, k], true[:, k]) for k in range(true.shape[1])]
        for key in ("mae", "corr"):
            out[key] = float(np.nanmean([p[key] for p in per]))
        for name, p in zip(task.targets, per):
            out[f"{name}/mae"] = p["mae"]
            out[f"{name}/corr"] = p["corr"]
        return out
    if task.range is not None and tuple(task.range) == (-3.0, 3.0):
        return sentiment_metrics(pred, true)
    return regression_metrics(pred, true)


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)
