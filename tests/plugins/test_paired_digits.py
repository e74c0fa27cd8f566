"""paired-digits (scikit-learn digits x MNIST-1D signals), the conv encoders inside supervised, and the
three-way term of synthetic-factors."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch

from mfm_bench.errors import MfmBenchError
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer

pytest.importorskip("sklearn")
pytest.importorskip("mnist1d")


@pytest.fixture(scope="module")
def digits():
    return get_registry().build("dataset", "paired-digits")


def test_shapes_splits_and_pairing(digits):
    sizes = {s: len(digits.split(s)) for s in ("train", "valid", "test")}
    assert sum(sizes.values()) == 1797 and sizes["test"] == sizes["valid"] == 269
    train = digits.split("train")
    assert train.inputs["image"].shape[1:] == (1, 8, 8) and train.inputs["signal"].shape[1:] == (40,)
    assert 0.0 <= float(train.inputs["image"].min()) and float(train.inputs["image"].max()) <= 1.0
    assert [m.kind for m in digits.spec.modalities] == ["image", "vector"]
    ids = [set(digits.split(s).ids) for s in ("train", "valid", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    # every class is in every split, in proportion
    for s in ("train", "valid", "test"):
        counts = np.bincount(digits.split(s).target.numpy(), minlength=10)
        assert counts.min() > 0.1 * counts.sum() / 10 * 5


def test_signals_carry_the_label(digits):
    """The pairing is by label: a nearest-centroid reader of the signals alone beats chance (0.1); MNIST-1D is
    built to be hard for linear readers (random translations), so the margin is moderate."""
    tr, te = digits.split("train"), digits.split("test")
    cent = torch.stack([tr.inputs["signal"][tr.target == c].mean(0) for c in range(10)])  # (10, L)
    pred = torch.cdist(te.inputs["signal"], cent).argmin(1)
    assert (pred == te.target).float().mean() > 0.18


def test_same_seed_same_data_other_seed_other_pairs():
    a = get_registry().build("dataset", "paired-digits", seed=1).split("train")
    b = get_registry().build("dataset", "paired-digits", seed=1).split("train")
    c = get_registry().build("dataset", "paired-digits", seed=2).split("train")
    assert a.ids == b.ids and torch.equal(a.inputs["signal"], b.inputs["signal"])
    assert a.ids != c.ids


def test_missing_train_removes_one_modality_never_both():
    tr = get_registry().build("dataset", "paired-digits", missing_train=0.4).split("train")
    img, sig = tr.mask["image"][:, 0], tr.mask["signal"][:, 0]
    assert (img | sig).all() and 0.3 < float((~img | ~sig).float().mean()) < 0.5
    assert float(tr.inputs["image"][~img].abs().sum()) == 0.0


def test_absent_extra_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("mnist1d"):
            raise ImportError("No module named 'mnist1d'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(MfmBenchError, match=r'pip install -e "\.\[digits\]"'):
        get_registry().build("dataset", "paired-digits")


def test_conv_encoders_inside_supervised_learn_the_digits(digits):
    torch.set_num_threads(1)
    model = get_registry().build(
        "model",
        "supervised",
        digits.spec,
        encoder={"image": "conv-image", "signal": "conv-signal"},
        encoder_params={"hidden": 16, "channels": 8},
    )
    Trainer(TrainConfig(epochs=10, batch_size=32, lr=3e-3, early_stop=0, device="cpu")).fit(
        model, digits.split("train"), digits.split("valid"), seed=0
    )
    model.eval()
    with torch.no_grad():
        pred = model(digits.split("test").batch(slice(None))).prediction.argmax(1)
    assert (pred == digits.split("test").target).float().mean() > 0.85  # 0.96 when written


def test_conv_encoders_refuse_the_wrong_shape():
    img = get_registry().build("encoder", "conv-image", 1)
    with pytest.raises(ValueError, match="conv-image expects an image"):
        img(torch.zeros(2, 5, 3), torch.ones(2, 5, dtype=torch.bool))
    sig = get_registry().build("encoder", "conv-signal", 3)
    pooled, seq = sig(torch.randn(2, 7, 3), torch.ones(2, 7, dtype=torch.bool))  # a sequence: 3 channels
    assert pooled.shape == (2, 32) and seq.shape[0] == 2
    pooled, _ = sig(torch.randn(2, 3), torch.zeros(2, 1, dtype=torch.bool))  # a missing vector
    assert float(pooled.detach().abs().sum()) == 0.0


def test_synthetic_three_way_term():
    base = dict(dims={"a": 3, "b": 3, "c": 3}, n_train=400, n_valid=10, n_test=10, seq_len=4, min_len=2)
    plain = get_registry().build("dataset", "synthetic-factors", **base).split("train")
    three = get_registry().build("dataset", "synthetic-factors", three_way=2.0, **base).split("train")
    assert torch.equal(plain.inputs["a"], three.inputs["a"])  # same inputs, only the label changes
    f = three.factors
    term = f["private_a"][:, 0] * f["private_b"][:, 0] * f["private_c"][:, 0]
    inner_plain, inner_three = torch.atanh(plain.target / 3), torch.atanh(three.target.clamp(-2.9999, 2.9999) / 3)
    ok = plain.target.abs() < 2.99
    assert torch.allclose(
        (inner_three - inner_plain)[ok & (three.target.abs() < 2.99)],
        2.0 * term[ok & (three.target.abs() < 2.99)],
        atol=1e-3,
    )
    with pytest.raises(ValueError, match="three_way needs at least 3 modalities"):
        get_registry().build("dataset", "synthetic-factors", three_way=1.0, dims={"a": 2, "b": 2})
