"""Evaluation: conditions applied to the test split, metric dispatch and linear probes.

Conditions (the robustness protocol: clean, missing, noise, time-step drop) are batch transforms defined in
:mod:`mfm_bench.conditions` and re-exported here, so every model responds to them without special code.

Linear probes: when a model returns ``extras["codes"]`` and the dataset has true factors, a ridge regression
from each code to each factor is fitted on the training split and scored by R^2 on the test split
(``probe_<factor>_from_<code>``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from .conditions import (  # noqa: F401 - torch-free, re-exported here
    KINDS,
    SYNTAX,
    Condition,
    ConditionError,
    condition_from_name,
    parse_condition_items,
    parse_conditions,
)
from .contracts import DatasetSpec
from .metrics import compute_metrics, resampled_metrics
from .training import EVAL_BATCH_SIZE, predict


def ridge_r2(
    x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, alpha: float = 1e-2
) -> float:
    """Fit ridge regression on train (features standardised, intercept), return test R^2 averaged over outputs."""
    x_train, y_train, x_test, y_test = (t.double() for t in (x_train, y_train, x_test, y_test))
    mu, sd = x_train.mean(0), x_train.std(0).clamp_min(1e-8)
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd
    ymu = y_train.mean(0)
    a = xtr.T @ xtr + alpha * len(xtr) * torch.eye(xtr.shape[1], dtype=xtr.dtype)
    w = torch.linalg.solve(a, xtr.T @ (y_train - ymu))
    pred = xte @ w + ymu
    sse = ((y_test - pred) ** 2).sum(0)
    sst = ((y_test - y_test.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return float((1 - sse / sst).mean())


def _bootstrap_rows(
    spec: DatasetSpec, p: Any, split: str, resamples: int, seed: int
) -> list[tuple[str, str, str, float]]:
    from .stats import CI_HI, CI_LO, bootstrap_ci

    pred = p.prediction.detach().float().cpu().numpy() if torch.is_tensor(p.prediction) else np.asarray(p.prediction)
    true = p.target.detach().cpu().numpy() if torch.is_tensor(p.target) else np.asarray(p.target)
    batched = resampled_metrics(spec.task)  # every resample at once, where the task's metrics have that form
    with np.errstate(all="ignore"), warnings.catch_warnings():  # a resample may hold one class only
        warnings.simplefilter("ignore")
        cis = bootstrap_ci(
            lambda idx: compute_metrics(spec.task, pred[idx], true[idx]),
            len(true),
            resamples,
            seed,
            resampled=None if batched is None else (lambda idx: batched(pred[idx], true[idx])),
        )
    return [
        ("clean", split, f"{bound}{m}", v) for m, (lo, hi) in cis.items() for bound, v in ((CI_LO, lo), (CI_HI, hi))
    ]


def evaluate(
    model: torch.nn.Module,
    dataset: Any,
    conditions: list[Condition],
    device: torch.device | str = "cpu",
    batch_size: int = EVAL_BATCH_SIZE,
    seed: int = 0,
    split: str = "test",
    probes: bool = True,
    on_predictions: Any = None,
    bootstrap: int = 0,
) -> list[tuple[str, str, str, float]]:
    """Rows of (condition, split, metric, value) for every condition on ``split``, plus probe rows.
    ``on_predictions(condition, predictions)``, when given, receives each condition's per-sample predictions.
    With ``bootstrap`` resamples, the 95% bootstrap bounds of each clean metric over the samples of ``split``
    (``ci95_lo:<metric>``, ``ci95_hi:<metric>``; :mod:`mfm_bench.stats`)."""
    spec: DatasetSpec = dataset.spec
    data = dataset.split(split)
    rows: list[tuple[str, str, str, float]] = []
    clean_preds = None
    for cond in conditions:
        cond.check(spec)
        p = predict(model, data, cond.transform(seed), device=device, batch_size=batch_size)
        if cond.kind == "clean":
            clean_preds = p
        if on_predictions is not None:
            on_predictions(cond, p)
        for metric, value in {**compute_metrics(spec.task, p.prediction, p.target), **p.metric_means}.items():
            rows.append((cond.name, split, metric, float(value)))
        if cond.kind == "clean" and bootstrap > 0:
            rows += _bootstrap_rows(spec, p, split, bootstrap, seed)
    if probes and clean_preds is not None and clean_preds.codes and clean_preds.factors:
        train_preds = predict(model, dataset.split("train"), device=device, batch_size=batch_size)
        for factor, y_test in clean_preds.factors.items():
            for code, x_test in clean_preds.codes.items():
                r2 = ridge_r2(train_preds.codes[code], train_preds.factors[factor], x_test, y_test)
                rows.append(("clean", split, f"probe_{factor}_from_{code}", r2))
    return rows
