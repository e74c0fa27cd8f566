"""Checks that keep a wrong number off the leaderboard: diverged training, non-finite test metrics, bad data.

- :func:`check_training`: a run whose validation loss was never finite (diverged), or never better than the
  initial, untrained weights' validation loss (did not train: best epoch 0), fails with the reason and the loss
  history. Evaluating it would score weights that training made worse than chance initialisation.
- :func:`check_metrics`: a run whose clean test metrics are not finite fails.
- :func:`check_dataset`: non-finite labels in any split are an error naming the dataset, split and count;
  a constant or all-zero modality in the training split is a warning (returned, then recorded and printed).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import MfmBenchError
from .metric_catalog import higher_is_better
from .training import TrainingError

SPLITS = ("train", "valid", "test")


class DivergedError(TrainingError):
    """Training never improved on the initial weights (or its validation loss was never finite)."""


class DataError(MfmBenchError):
    """A dataset's splits hold values no model can learn from (non-finite labels)."""


def _losses(history: list[dict[str, float]]) -> str:
    vals = [row.get("valid_label", math.nan) for row in history]
    return "[" + ", ".join(f"{v:.4g}" for v in vals) + "]"


def check_training(result: Any, initial_loss: float) -> None:
    """Raise :class:`DivergedError` when ``result`` (a TrainResult) did not train: best validation loss never
    finite, best epoch 0, or no epoch better than ``initial_loss`` (the untrained weights' validation loss)."""
    best, epoch = result.best_valid_loss, result.best_epoch
    history = f"validation label loss by epoch: {_losses(result.history)}"
    if not math.isfinite(best) or epoch == 0:
        raise DivergedError(
            f"diverged: the validation loss was never finite (initial weights: {initial_loss:.4g}); "
            f"{history}; lower train.lr or set train.grad_clip"
        )
    if math.isfinite(initial_loss) and best >= initial_loss:
        hint = (
            "lower train.lr or set train.grad_clip"
            if best > 10 * initial_loss
            else "no signal the model could learn, or overfitting from the first epoch: check the data and train.lr"
        )
        raise DivergedError(
            f"did not train: no epoch improved on the initial weights' validation loss "
            f"({initial_loss:.4g}; best {best:.4g} at epoch {epoch}); {history}; {hint}"
        )


def check_metrics(rows: list[tuple[str, str, str, float]]) -> None:
    """Raise :class:`DivergedError` when a clean test metric is infinite, or an error metric (lower is better)
    is NaN: the predictions themselves are not finite. (A correlation of constant predictions may be NaN.)"""
    bad = [
        f"{m}={v}"
        for cond, split, m, v in rows
        if cond == "clean"
        and split == "test"
        and not math.isfinite(v)
        and (math.isinf(v) or higher_is_better(m) is False)
    ]
    if bad:
        raise DivergedError(f"non-finite test metrics: {', '.join(bad[:6])}")


def check_dataset(name: str, dataset: Any) -> list[str]:
    """Non-finite labels raise :class:`DataError`; returns warnings for constant or all-zero training modalities."""
    for split in SPLITS:
        target = _targets(dataset.split(split))
        if target is not None and target.is_floating_point():
            n = int((~target.isfinite()).sum())
            if n:
                raise DataError(
                    f"dataset {name!r}, split {split!r}: {n} of {target.numel()} labels are not finite "
                    "(NaN or inf); fix or drop those samples in the dataset plugin"
                )
    return [
        f"dataset {name!r}, split 'train': modality {m!r} is {what}: models cannot learn from it"
        for m, what in _flat_modalities(dataset.split("train")).items()
    ]


def _targets(split: Any) -> Any:
    import torch

    if hasattr(split, "target"):
        return split.target
    try:
        return torch.stack([torch.as_tensor(split[i]["target"]) for i in range(len(split))])
    except (KeyError, TypeError, RuntimeError):
        return None  # samples of another shape: nothing to check generically


def _flat_modalities(split: Any) -> dict[str, str]:
    """{modality: "all zero" | "constant"} over the real (masked-in) steps of a split held as tensors."""
    out: dict[str, str] = {}
    for m, x in getattr(split, "inputs", {}).items():
        mask = getattr(split, "mask", {}).get(m)
        vals = x[mask] if mask is not None and mask.shape == x.shape[: mask.dim()] else x
        if vals.numel() == 0 or not vals.is_floating_point():
            continue
        if not vals.any():
            out[m] = "all zero"
        elif bool((vals == vals.reshape(-1)[0]).all()):
            out[m] = "constant"
    return out
