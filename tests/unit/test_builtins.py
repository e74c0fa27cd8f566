"""Built-in encoders, fusions and the supervised model: shapes, masking, every task kind, learning."""

import pytest
import torch

from mfm_bench.contracts import Batch, DatasetSpec, Modality, Task, TensorSplit
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer, predict

reg = get_registry()


@pytest.mark.parametrize("name", ["lstm", "gru", "mean"])
def test_encoder_shapes_and_padding_is_ignored(name):
    enc = reg.build("encoder", name, 5, hidden=7)
    x = torch.randn(3, 6, 5)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[0, :2] = False  # left padding
    x_pad = x.clone()
    x_pad[0, :2] = 0
    pooled, seq = enc(x_pad, mask)
    assert pooled.shape == (3, enc.output_dim) == (3, 7) and seq.shape == (3, 6, 7)
    # changing what sits in padded steps changes nothing
    x_junk = x_pad.clone()
    x_junk[0, :2] = 100.0
    assert torch.allclose(enc(x_junk, mask)[0], pooled, atol=1e-6)


def test_encoder_all_padding_gives_zeros_not_nan():
    for name in ("lstm", "mean"):
        enc = reg.build("encoder", name, 4)
        pooled, _ = enc(torch.zeros(2, 5, 4), torch.zeros(2, 5, dtype=torch.bool))
        assert torch.isfinite(pooled).all()


def spec_for(kind):
    task = {
        "regression": Task("regression", range=(-3.0, 3.0)),
        "classification": Task("classification", n_classes=3),
        "multi_regression": Task("multi_regression", targets=("x", "y")),
    }[kind]
    return DatasetSpec("t", (Modality("a", 4), Modality("b", 2)), task)


def batch_for(spec, n=5, t=6):
    g = torch.Generator().manual_seed(0)
    target = {
        "regression": torch.randn(n, generator=g),
        "classification": torch.randint(0, 3, (n,), generator=g),
        "multi_regression": torch.randn(n, 2, generator=g),
    }[spec.task.kind]
    return Batch(
        {m.name: torch.randn(n, t, m.dim, generator=g) for m in spec.modalities},
        {m.name: torch.ones(n, t, dtype=torch.bool) for m in spec.modalities},
        target,
        [str(i) for i in range(n)],
    )


@pytest.mark.parametrize("kind", ["regression", "classification", "multi_regression"])
@pytest.mark.parametrize("fusion", ["concat", "late"])
def test_supervised_every_task_kind(kind, fusion):
    spec = spec_for(kind)
    model = reg.build("model", "supervised", spec, fusion=fusion, encoder={"a": "lstm", "b": "mean"})
    b = batch_for(spec)
    out = model(b)
    expected = {"regression": (5,), "classification": (5, 3), "multi_regression": (5, 2)}[kind]
    assert out.prediction.shape == expected and out.losses["label"].dim() == 0
    out.losses["label"].backward()


def test_late_fusion_ignores_a_missing_modality():
    spec = spec_for("regression")
    model = reg.build("model", "supervised", spec, fusion="late").eval()
    b = batch_for(spec)
    missing = b.replace(
        inputs={**b.inputs, "b": torch.zeros_like(b.inputs["b"])}, mask={**b.mask, "b": torch.zeros_like(b.mask["b"])}
    )
    only_a = model.fusion.heads["a"](model.encoders["a"](b.inputs["a"], b.mask["a"])[0]).squeeze(-1)
    assert torch.allclose(model(missing).prediction, only_a, atol=1e-6)


def test_supervised_learns_on_synthetic_factors():
    ds = reg.build(
        "dataset",
        "synthetic-factors",
        n_train=400,
        n_valid=100,
        n_test=200,
        dims={"a": 6, "b": 4},
        seq_len=8,
        min_len=4,
    )
    model = reg.build("model", "supervised", ds.spec, encoder="mean", fusion="concat")
    before = predict(model, ds.split("test")).prediction
    result = Trainer(TrainConfig(epochs=15, batch_size=32, lr=3e-3, early_stop=0, device="cpu")).fit(
        model, ds.split("train"), ds.split("valid")
    )
    p = predict(model, ds.split("test"))
    mae = (p.prediction - p.target).abs().mean()
    baseline = (p.target - ds.split("train").target.mean()).abs().mean()  # predict-the-mean
    assert mae < 0.6 * baseline, (float(mae), float(baseline))
    assert (before - p.target).abs().mean() > mae
    assert result.params > 0 and result.samples_per_sec > 0 and len(result.history) == 15


def test_tensor_split_batch_matches_collate():
    from mfm_bench.contracts import collate

    ds = reg.build("dataset", "synthetic-factors", n_train=10, n_valid=2, n_test=2, dims={"a": 3})
    tr: TensorSplit = ds.split("train")
    fast = tr.batch(torch.tensor([3, 1, 4]))
    slow = collate([tr[3], tr[1], tr[4]])
    assert (
        fast.ids == slow.ids
        and torch.equal(fast.inputs["a"], slow.inputs["a"])
        and torch.equal(fast.target, slow.target)
    )
    assert torch.equal(fast.factors["shared"], slow.factors["shared"])
