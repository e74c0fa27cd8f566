"""Shared helpers of the baseline tests: small datasets of every task kind and a minimal training loop."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mfm_bench.contracts import DatasetSpec, Task, TensorSplit
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer

DIMS = {"text": 12, "audio": 5, "visual": 8}

#: every baseline, as (model name, params) built through the registry
BASELINES = {
    "ef_lstm": ("supervised", {"fusion": "ef_lstm"}),
    "late": ("supervised", {"fusion": "late"}),
    "late_learned": ("supervised", {"fusion": "late", "fusion_params": {"weighting": "learned"}}),
    "tfn": ("supervised", {"fusion": "tfn"}),
    "lmf": ("supervised", {"fusion": "lmf"}),
    "mult": ("supervised", {"fusion": "mult", "fusion_params": {"d_model": 16, "heads": 2, "layers": 1}}),
    "mctn": ("mctn", {}),
    "misa": ("misa", {}),
}


def synthetic(task: str = "regression", n_train: int = 384, n_test: int = 192, seed: int = 0, **kw):
    """(spec, train, valid, test splits) of a small synthetic-factors dataset; ``task`` may also be multi_regression,
    whose two targets are the first two true shared factors (the dataset's own regression label is dropped)."""
    base = "classification" if task == "classification" else "regression"
    params = dict(
        seed=seed,
        seq_len=10,
        min_len=5,
        dims=DIMS,
        task=base,
        n_train=n_train,
        n_valid=64,
        n_test=n_test,
        noise=0.3,
        n_classes=3,
    )
    params.update(kw)
    data = get_registry().build("dataset", "synthetic-factors", **params)
    spec, splits = data.spec, [data.split(s) for s in ("train", "valid", "test")]
    if task == "multi_regression":
        spec = dataclasses.replace(spec, task=Task("multi_regression", targets=("s0", "s1")))
        splits = [TensorSplit(s.inputs, s.mask, s.factors["shared"][:, :2].clone(), s.ids, s.factors) for s in splits]
    return (spec, *splits)


def build(name: str, spec: DatasetSpec, **extra):
    model_name, params = BASELINES[name]
    return get_registry().build("model", model_name, spec, **{**params, **extra})


def fit(
    model: torch.nn.Module, train: TensorSplit, valid: TensorSplit, epochs: int = 6, lr: float = 3e-3, seed: int = 0
):
    """Train with the core Trainer on the CPU (every epoch, the weights of the best validation epoch kept)."""
    return Trainer(TrainConfig(epochs=epochs, batch_size=32, lr=lr, early_stop=0, device="cpu")).fit(
        model, train, valid, seed=seed
    )


@torch.no_grad()
def predict(model: torch.nn.Module, split: TensorSplit) -> torch.Tensor:
    model.eval()
    return model(split.batch(slice(None))).prediction


def error(spec: DatasetSpec, pred: torch.Tensor, target: torch.Tensor) -> float:
    """MAE for (multi-)regression, error rate for classification."""
    if spec.task.kind == "classification":
        return float((pred.argmax(-1) != target).float().mean())
    return float((pred - target).abs().mean())


def trivial_error(spec: DatasetSpec, train: TensorSplit, test: TensorSplit) -> float:
    """The error of predicting the training mean (the majority class for classification)."""
    if spec.task.kind == "classification":
        majority = torch.bincount(train.target).argmax()
        return float((test.target != majority).float().mean())
    return float((test.target - train.target.float().mean(0)).abs().mean())


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy 2-core machine oversubscribed by two threads is far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
