"""Checks that keep a wrong number off the leaderboard: diverged training, non-finite test metrics, bad data.

- :func:`check_training`: a run whose validation loss was never finite (diverged), or never better than the
  initial, untrained weights' validation loss (did not train: best epoch 0), fails with the reason and the loss
  history. Evaluating it would score weights that training made worse than chance initialisation.
- :func:`check_metrics`: a run whose clean test metrics are not finite fails.
- :func:`check_dataset`: a split whose samples do not have the modalities of the dataset's spec, or not their
  kind and dim, is an error naming the dataset, split, modality, both shapes and the fix (without it the first
  encoder fails on a bare shape error); an empty split is an error naming the dataset and split; non-finite
  labels in any split are an error naming the dataset, split and count; a constant or all-zero modality in the
  training split is a warning (returned, then recorded and printed).
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


#: a sample's rank for each modality kind, and the axis that holds the modality's dim
_RANK_AXIS = {"sequence": (2, -1, "[T, D]"), "vector": (1, -1, "[D]"), "image": (3, 0, "[C, H, W]")}


def _sample_shapes(split: Any) -> dict[str, tuple[int, ...]] | None:
    """{modality: one sample's shape}, from a split held as tensors or from its first sample; None when empty."""
    inputs = getattr(split, "inputs", None)
    if isinstance(inputs, dict):
        return {m: tuple(t.shape[1:]) for m, t in inputs.items()}
    if len(split) == 0:
        return None
    sample = split[0]
    if not isinstance(sample, dict) or not isinstance(sample.get("inputs"), dict):
        return None  # samples of another shape: nothing to check generically
    return {m: tuple(getattr(t, "shape", ())) for m, t in sample["inputs"].items()}


def check_spec(name: str, dataset: Any, split_name: str) -> None:
    """The samples of ``split_name`` have every modality of ``dataset.spec``, each of its kind's rank and dim;
    else a :class:`DataError` naming the dataset, split, modality, the shape found and the one its spec says."""
    shapes = _sample_shapes(dataset.split(split_name))
    if shapes is None:
        return
    where = f"dataset {name!r}, split {split_name!r}"
    for mod in dataset.spec.modalities:
        if mod.name not in shapes:
            raise DataError(
                f"{where}: its samples have no input {mod.name!r}, which its spec lists (inputs: {sorted(shapes)}); "
                "give every sample every modality of the spec (a missing one as zeros with an all-False mask), or "
                "drop it from the DatasetSpec (the dataset contract, docs/plugins.md)"
            )
        rank, axis, form = _RANK_AXIS[mod.kind]
        shape = shapes[mod.name]
        if len(shape) != rank or shape[axis] != mod.dim:
            image = mod.kind == "image"
            said = f"{'an' if image else 'a'} {mod.kind} {form} with {'C' if image else 'D'} = {mod.dim}"
            raise DataError(
                f"{where}: modality {mod.name!r} is [{', '.join(map(str, shape))}] per sample, but the spec says "
                f"{said} (Modality({mod.name!r}, {mod.dim}, {mod.kind!r})); make the spec's Modality match the data "
                "(its dim, its kind) or the data match the spec: models build their encoders from the spec "
                "(the dataset contract, docs/plugins.md)"
            )


def check_dataset(name: str, dataset: Any) -> list[str]:
    """A spec the samples do not match, or non-finite labels, raise :class:`DataError`; returns warnings for
    constant or all-zero training modalities."""
    for split in SPLITS:
        if len(dataset.split(split)) == 0:  # else a bare "torch.cat(): expected a non-empty list" after training
            raise DataError(
                f"dataset {name!r}, split {split!r} has no samples; every split is used (train to fit, valid to "
                "keep the checkpoint, test to score): give it samples in the dataset's params or its files"
            )
        check_spec(name, dataset, split)
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
