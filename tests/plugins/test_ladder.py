"""The ladder model: cross-modal reconstruction through skip connections, on synthetic-factors and on the real
audio + visual ICT-MMMO and YouTube data in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mfm_bench.contracts import DatasetSpec, Modality, Task
from mfm_bench.errors import MfmBenchError
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_real = pytest.mark.skipif(
    not (SHARED / "mfn-h5" / "mmmo" / "audio_train.h5").is_file(), reason="../shared/data/mfn-h5 absent"
)
AV = ["audio", "visual"]


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def synthetic(**kw):
    params = dict(
        seed=0,
        seq_len=8,
        min_len=4,
        dims={"a": 6, "b": 5, "c": 4},
        n_train=256,
        n_valid=64,
        n_test=64,
        task="classification",
        n_classes=2,
    )
    return get_registry().build("dataset", "synthetic-factors", **{**params, **kw})


def fit(model, data, epochs=5):
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, early_stop=0, device="cpu")
    return Trainer(cfg).fit(model, data.split("train"), data.split("valid"), seed=0)


@pytest.mark.parametrize("backbone", ["mlp", "lstm"])
def test_reconstruction_loss_falls_and_the_task_is_learned(backbone):
    data = synthetic()
    model = get_registry().build("model", "ladder", data.spec, backbone=backbone, hidden=16)
    assert len(model.decoders) == 6  # every ordered pair of the 3 modalities
    result = fit(model, data)
    first, last = result.history[0], result.history[-1]
    assert last["train_reconstruction"] < 0.8 * first["train_reconstruction"], (first, last)
    assert last["train_label"] < first["train_label"], (first, last)
    model.eval()
    with torch.no_grad():
        out = model(data.split("test").batch(slice(None)))
    acc = (out.prediction.argmax(1) == data.split("test").target).float().mean().item()
    assert acc > 0.6, acc
    s, n = out.extras["metric_sums"]["xmodal_recon_mse"]
    assert n == 6 * 64 and np.isfinite(float(s))


def test_skip_connections_carry_the_source_layers():
    """Each reconstructed layer depends on the source's corrupted layer at that depth (the lateral skip)."""
    data = synthetic()
    model = get_registry().build("model", "ladder", data.spec, hidden=8, layers=3)
    noisy = [torch.randn(4, 8, requires_grad=True) for _ in range(3)]
    recon = model.decoders["a_to_b"](noisy)
    recon[0].sum().backward()
    assert all(h.grad is not None and h.grad.abs().sum() > 0 for h in noisy)
    assert len(recon) == 3 and recon[0].shape == (4, 8)


def test_missing_modality_pairs_are_not_reconstructed():
    data = synthetic()
    model = get_registry().build("model", "ladder", data.spec, hidden=8).eval()
    batch = data.split("test").batch(slice(0, 10))
    batch = batch.replace(mask={**batch.mask, "c": torch.zeros_like(batch.mask["c"])})
    _, n = model(batch).extras["metric_sums"]["xmodal_recon_mse"]
    assert n == 2 * 10  # only a->b and b->a


def test_images_and_single_modalities_are_refused():
    task = Task("classification", n_classes=3)
    img = DatasetSpec("toy", (Modality("image", 1, "image"), Modality("s", 4, "vector")), task)
    with pytest.raises(MfmBenchError, match="'image'.*image.*conv-image"):
        get_registry().build("model", "ladder", img)
    with pytest.raises(MfmBenchError, match="at least 2"):
        get_registry().build("model", "ladder", DatasetSpec("toy", (Modality("s", 4, "vector"),), task))


@needs_real
@pytest.mark.parametrize("name", ["ict-mmmo", "youtube"])
def test_real_audio_visual(name, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    data = get_registry().build("dataset", name, modalities=AV)
    model = get_registry().build("model", "ladder", data.spec, hidden=16)
    result = fit(model, data, epochs=4)
    first, last = result.history[0], result.history[-1]
    assert np.isfinite(last["train_label"]) and last["train_label"] < first["train_label"], (first, last)
    assert last["train_reconstruction"] < first["train_reconstruction"], (first, last)
