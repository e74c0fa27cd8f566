"""Evaluation conditions (clean, missing modality, Gaussian noise), metric dispatch and linear probes.

Conditions are batch transforms, so every model responds to them without special code:

- ``clean``: the test split as it is.
- ``missing:M`` (suite: ``{missing: M}``): modality M becomes zeros with an all-False mask, in every sample.
- ``noise:M:STD`` (suite: ``{noise: {modality: M, std: [0.1, 0.5]}}``): Gaussian noise of that std (in the
  features' own units, which are standardised for the built-in datasets) added at M's real steps; seeded.

Linear probes: when a model returns ``extras["codes"]`` and the dataset has true factors, a ridge regression
from each code to each factor is fitted on the training split and scored by R^2 on the test split
(``probe_<factor>_from_<code>``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .contracts import Batch, DatasetSpec
from .errors import MfmBenchError
from .metrics import compute_metrics
from .training import EVAL_BATCH_SIZE, predict


@dataclass(frozen=True)
class Condition:
    kind: str  # clean | missing | noise
    modality: str | None = None
    std: float = 0.0

    @property
    def name(self) -> str:
        if self.kind == "clean":
            return "clean"
        if self.kind == "missing":
            return f"missing:{self.modality}"
        return f"noise:{self.modality}:{self.std:g}"

    def check(self, spec: DatasetSpec) -> None:
        if self.modality is not None and self.modality not in spec.modality_names:
            raise ValueError(f"condition {self.name!r}: dataset {spec.name!r} has no modality {self.modality!r} "
                             f"(it has {', '.join(spec.modality_names)})")

    def transform(self, seed: int = 0):
        if self.kind == "clean":
            return None
        gen = torch.Generator().manual_seed(seed)

        def apply(batch: Batch) -> Batch:
            m = self.modality
            x, mask = batch.inputs[m], batch.mask[m]
            if self.kind == "missing":
                # the truth travels beside the batch so a model that rebuilds the modality can be scored (MFM)
                return batch.replace(inputs={**batch.inputs, m: torch.zeros_like(x)}, mask={**batch.mask, m: torch.zeros_like(mask)},
                                     withheld={**batch.withheld, m: (x, mask)})
            noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype) * self.std
            real = mask.reshape(*mask.shape, *([1] * (x.dim() - mask.dim()))).to(x.dtype)
            return batch.replace(inputs={**batch.inputs, m: x + noise * real})

        return apply


class ConditionError(MfmBenchError, ValueError):
    """A bad entry of a suite's ``evaluate.conditions``: ``index`` is its position, ``message`` the problem."""

    def __init__(self, index: int, message: str) -> None:
        self.index, self.message = index, message
        super().__init__(f"evaluate.conditions[{index}]: {message}")


def parse_conditions(raw: list[Any]) -> list[Condition]:
    """Suite ``evaluate.conditions`` -> conditions, in order, with ``clean`` first and no duplicates.

    Raises :class:`ConditionError` naming the index of the first bad entry."""
    out: list[Condition] = []
    for i, item in enumerate(raw or ["clean"]):
        if item == "clean":
            conds = [Condition("clean")]
        elif isinstance(item, str) and item.startswith("missing:"):
            conds = [Condition("missing", item.split(":", 1)[1])]
        elif isinstance(item, str) and item.startswith("noise:") and item.count(":") == 2:
            _, mod, std = item.split(":")
            try:
                conds = [Condition("noise", mod, float(std))]
            except ValueError:
                raise ConditionError(i, f"noise std must be a number, got {std!r}") from None
        elif isinstance(item, dict) and set(item) == {"missing"}:
            mods = item["missing"] if isinstance(item["missing"], list) else [item["missing"]]
            conds = [Condition("missing", str(m)) for m in mods]
        elif isinstance(item, dict) and set(item) == {"noise"} and isinstance(item["noise"], dict):
            spec = item["noise"]
            unknown = set(spec) - {"modality", "std"}
            if unknown or "modality" not in spec:
                raise ConditionError(i, f"noise takes {{modality: NAME, std: NUMBER or [NUMBERS]}}, got {spec}")
            stds = spec.get("std", [0.5])
            stds = stds if isinstance(stds, list) else [stds]
            mods = spec["modality"] if isinstance(spec["modality"], list) else [spec["modality"]]
            conds = [Condition("noise", str(m), float(s)) for m in mods for s in stds]
        else:
            raise ConditionError(i, f"unknown condition {item!r}; use clean, {{missing: MODALITY}} or "
                             "{noise: {modality: MODALITY, std: [0.1, 0.5]}}")
        for c in conds:
            if c not in out:
                out.append(c)
    if Condition("clean") not in out:
        out.insert(0, Condition("clean"))
    return out


def ridge_r2(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
             alpha: float = 1e-2) -> float:
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


def _bootstrap_rows(spec: DatasetSpec, p: Any, split: str, resamples: int, seed: int) -> list[tuple[str, str, str, float]]:
    from .stats import CI_HI, CI_LO, bootstrap_ci

    pred = p.prediction.detach().float().cpu().numpy() if torch.is_tensor(p.prediction) else np.asarray(p.prediction)
    true = p.target.detach().cpu().numpy() if torch.is_tensor(p.target) else np.asarray(p.target)
    with np.errstate(all="ignore"), warnings.catch_warnings():  # a resample may hold one class only
        warnings.simplefilter("ignore")
        cis = bootstrap_ci(lambda idx: compute_metrics(spec.task, pred[idx], true[idx]), len(true), resamples, seed)
    return [("clean", split, f"{bound}{m}", v) for m, (lo, hi) in cis.items() for bound, v in ((CI_LO, lo), (CI_HI, hi))]


def evaluate(model: torch.nn.Module, dataset: Any, conditions: list[Condition], device: torch.device | str = "cpu",
             batch_size: int = EVAL_BATCH_SIZE, seed: int = 0, split: str = "test", probes: bool = True,
             bootstrap: int = 0) -> list[tuple[str, str, str, float]]:
    """Rows of (condition, split, metric, value) for every condition on ``split``, plus probe rows; with
    ``bootstrap`` resamples, the 95% bootstrap bounds of each clean metric over the samples of ``split``
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
