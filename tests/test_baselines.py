"""Every baseline: output shapes for the three task kinds, finite under missing modalities, learns on synthetic-factors."""

from __future__ import annotations

import pytest
import torch

from baseline_helpers import BASELINES, build, error, fit, one_thread, predict, synthetic, trivial_error  # noqa: F401

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
    none = batch.replace(inputs={m: torch.zeros_like(x) for m, x in batch.inputs.items()},
                         mask={m: torch.zeros_like(k) for m, k in batch.mask.items()})
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
