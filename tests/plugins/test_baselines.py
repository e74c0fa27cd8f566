"""Every baseline: output shapes for the three task kinds, finite under missing modalities, learns on
synthetic-factors."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import BASELINES, build, error, fit, one_thread, predict, synthetic, trivial_error  # noqa: F401

from mfm_bench.contracts import Batch, DatasetSpec, Modality, Task

TASKS = ("regression", "classification", "multi_regression")


@pytest.fixture(scope="module")
def data():
    return {task: synthetic(task, n_train=96, n_test=32) for task in TASKS}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shapes_losses_and_overfit(name, task, data):
    """Right prediction shape for the task, a finite "label" loss, and the total loss falls on a small batch."""
    spec, train, _, _ = data[task]
    torch.manual_seed(0)
    model = build(name, spec)
    batch = train.batch(slice(0, 48))
    out = model(batch)
    expected = {"regression": (48,), "classification": (48, 3), "multi_regression": (48, 2)}[task]
    assert tuple(out.prediction.shape) == expected
    assert "label" in out.losses and all(torch.isfinite(v) and v.dim() == 0 for v in out.losses.values()), out.losses
    model.eval()
    with torch.no_grad():
        first = float(sum(model(batch).losses.values()))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(30):
        loss = sum(model(batch).losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        last = float(sum(model(batch).losses.values()))
    assert last < 0.7 * first, f"{name} on {task}: loss {first:.3f} -> {last:.3f}"


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_missing_modalities_stay_finite(name, data):
    """A missing modality is a zero tensor with an all-False mask: predictions and gradients stay finite, for one
    modality missing in some samples and for every modality missing in every sample."""
    spec, train, _, _ = data["regression"]
    torch.manual_seed(0)
    model = build(name, spec)
    batch = train.batch(slice(0, 16))
    inputs, mask = dict(batch.inputs), dict(batch.mask)
    inputs["audio"] = inputs["audio"].clone()
    inputs["audio"][::2] = 0.0
    mask["audio"] = mask["audio"].clone()
    mask["audio"][::2] = False
    out = model(batch.replace(inputs=inputs, mask=mask))
    sum(out.losses.values()).backward()
    assert torch.isfinite(out.prediction).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    none = batch.replace(
        inputs={m: torch.zeros_like(x) for m, x in batch.inputs.items()},
        mask={m: torch.zeros_like(k) for m, k in batch.mask.items()},
    )
    model.eval()
    with torch.no_grad():
        assert torch.isfinite(model(none).prediction).all()


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_learns_on_synthetic_factors(name):
    """A short training reaches a test MAE clearly below predicting the training mean."""
    spec, train, valid, test = synthetic("regression", n_train=256, n_test=128)
    torch.manual_seed(0)
    model = build(name, spec)
    result = fit(model, train, valid, epochs=6)
    mae, trivial = error(spec, predict(model, test), test.target), trivial_error(spec, train, test)
    assert mae < 0.75 * trivial, f"{name}: test MAE {mae:.3f} vs predict-the-mean {trivial:.3f}"
    assert result.params == sum(p.numel() for p in model.parameters()) and result.samples_per_sec > 0


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_vector_modality(name):
    """A vector modality [B, D] (mask [B, 1]) next to sequences: every baseline reads it (its content changes the
    prediction) and ignores it where it is missing."""
    g = torch.Generator().manual_seed(0)
    B, T = 8, 6
    spec = DatasetSpec(
        "toy", (Modality("text", 4), Modality("face", 3, kind="vector")), Task("regression", range=(-3.0, 3.0))
    )
    mask = torch.arange(T)[None, :] >= torch.randint(0, T - 1, (B, 1), generator=g)  # left-padded, >= 2 real steps
    face_mask = torch.ones(B, 1, dtype=torch.bool)
    face_mask[::2] = False
    face = torch.randn(B, 3, generator=g) * face_mask
    batch = Batch(
        {"text": torch.randn(B, T, 4, generator=g) * mask.unsqueeze(-1), "face": face},
        {"text": mask, "face": face_mask},
        torch.randn(B, generator=g),
        [str(i) for i in range(B)],
    )
    torch.manual_seed(0)
    model = build(name, spec, **({} if name == "mctn" else {"encoder": "mean"})).eval()
    with torch.no_grad():
        a = model(batch).prediction
        b = model(batch.replace(inputs=dict(batch.inputs, face=torch.randn(B, 3, generator=g) + 1.0))).prediction
    assert a.shape == (B,) and torch.isfinite(a).all()
    if name != "mctn":  # mctn reads only its source (text here)
        assert not torch.allclose(a[1::2], b[1::2])
    torch.testing.assert_close(a[::2], b[::2])  # missing: the vector's content is ignored


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_bf16_autocast(name, data):
    """Under bf16 autocast (the trainer's CUDA mode; the CPU variant here) dtypes stay consistent and losses finite."""
    spec, train, _, _ = data["classification"]
    torch.manual_seed(0)
    model = build(name, spec)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(train.batch(slice(0, 16)))
    sum(out.losses.values()).backward()
    assert out.prediction.shape == (16, 3)
    assert all(torch.isfinite(v) for v in out.losses.values()), out.losses


@pytest.mark.parametrize("encoder", ["lstm", "gru"])
def test_bidirectional_encoder_pools_each_directions_final_state(encoder):
    """The pooled vector of a bidirectional recurrent encoder is both directions' final states: the forward one at
    the last real step and the backward one at the first (the backward direction ends there), as h_n."""
    from mfm_bench.registry import get_registry

    torch.manual_seed(0)
    enc = get_registry().build("encoder", encoder, 3, hidden=4, bidirectional=True).eval()
    x = torch.randn(5, 6, 3)
    full = torch.ones(5, 6, dtype=torch.bool)
    with torch.no_grad():
        pooled, _ = enc(x, full)
        _, h_n = enc.rnn(x)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # (2, B, H): forward, backward
        torch.testing.assert_close(pooled, torch.cat([h_n[0], h_n[1]], dim=-1))
        left = full.clone()
        left[:, :2] = False  # left padding: the backward direction reads the 4 real steps and ends at step 2
        pooled, _ = enc(x * left.unsqueeze(-1), left)
        _, h_real = enc.rnn(x[:, 2:])
        h_real = h_real[0] if isinstance(h_real, tuple) else h_real
        torch.testing.assert_close(pooled[:, 4:], h_real[1])
