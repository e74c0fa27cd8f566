"""``misa``: the CMD and orthogonality losses, the loss terms, codes, and missing modalities."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import build, one_thread, synthetic  # noqa: F401

from mfm_bench.config import ConfigError
from mfm_bench.plugins.models.misa import cmd, difference


def test_cmd_is_zero_for_equal_samples_and_grows_with_the_gap():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 4, generator=g)
    assert float(cmd(x, x.clone(), 5)) == 0.0
    near, far = cmd(x, x + 0.05, 5), cmd(x, x + 0.3, 5)
    torch.testing.assert_close(near, torch.tensor(0.05 * 2.0))  # a shift moves only the mean: ||0.05 * 1_4||
    assert far > near
    assert cmd(x, x**2, 5) > cmd(x, x, 5)  # same support, other higher moments


def test_difference_penalises_correlated_representations():
    """mean((A^T B)^2) with rows centred over the batch and L2-normalised: small for independent representations,
    large for equal ones, and exactly the formula."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 4, generator=g), torch.randn(256, 4, generator=g)
    assert difference(a, b) < 0.05 * difference(a, a)
    assert difference(a, 2 * a + 1) == pytest.approx(float(difference(a, a)), rel=1e-5)  # scale and shift invariant
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    xc, yc = x - x.mean(0), y - y.mean(0)  # rows (0.5, -0.5), (-0.5, 0.5) and (0, 1), (0, -1)
    xn, yn = (
        xc / (xc.norm(dim=1, keepdim=True) + 1e-6),
        yc / (yc.norm(dim=1, keepdim=True) + 1e-6),
    )  # reference DiffLoss
    assert float(difference(x, y)) == pytest.approx(float((xn.T @ yn).pow(2).mean()))


def test_losses_codes_and_missing_modality():
    spec, train, _, _ = synthetic("regression", n_train=32, n_test=16)
    batch = train.batch(slice(0, 16))
    torch.manual_seed(0)
    model = build("misa", spec).eval()
    with torch.no_grad():
        out = model(batch)
    assert set(out.losses) == {"label", "similarity", "difference", "reconstruction"}
    assert all(v > 0 for v in out.losses.values())
    assert set(out.extras["codes"]) == {"invariant", "specific_text", "specific_audio", "specific_visual"}
    mask = dict(batch.mask, audio=batch.mask["audio"].clone())
    mask["audio"][:8] = False  # audio missing in half the samples
    with torch.no_grad():
        a = model(batch.replace(mask=mask)).prediction
        b = model(
            batch.replace(mask=mask, inputs=dict(batch.inputs, audio=torch.randn_like(batch.inputs["audio"])))
        ).prediction
    torch.testing.assert_close(a[:8], b[:8])  # a missing modality's content is ignored
    assert not torch.allclose(a[8:], b[8:])
    with pytest.raises(ConfigError, match="heads"):
        build("misa", spec, hidden=10, heads=4)


def test_reference_regression_loss_is_mse_and_difference_detaches_the_norm():
    """As declare-lab/MISA: nn.MSELoss for regression (solver.py), the DiffLoss norms detached (utils/functions.py)."""
    import torch.nn.functional as F

    spec, train, _, _ = synthetic("regression", n_train=32, n_test=16)
    batch = train.batch(slice(0, 16))
    torch.manual_seed(0)
    model = build("misa", spec).eval()
    with torch.no_grad():
        out = model(batch)
        l1 = build("misa", spec, regression_loss="l1").eval()
        l1.load_state_dict(model.state_dict())
        out_l1 = l1(batch)
    torch.testing.assert_close(out.losses["label"], F.mse_loss(out.prediction, batch.target.float()))
    torch.testing.assert_close(out_l1.losses["label"], F.l1_loss(out.prediction, batch.target.float()))
    assert model.cfg.dropout == 0.5
    g = torch.Generator().manual_seed(3)
    a0, b = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    grads = {}
    for detach in (True, False):
        a = a0.clone().requires_grad_(True)
        difference(a, b, detach).backward()
        grads[detach] = a.grad
    a = a0.clone().requires_grad_(True)
    ac, bc = a - a.mean(0), b - b.mean(0)
    ref = (
        ((ac / (ac.norm(dim=1, keepdim=True).detach() + 1e-6)).T @ (bc / (bc.norm(dim=1, keepdim=True) + 1e-6)))
        .pow(2)
        .mean()
    )
    ref.backward()
    torch.testing.assert_close(grads[True], a.grad)  # the gradient of the reference formula, norms held constant
    assert not torch.allclose(grads[True], grads[False])


def test_auxiliary_terms_over_masked_rows_equal_them_over_selected_rows():
    """cmd, difference and the reconstruction MSE over the rows a mask marks (so that a training step never reads
    the mask on the host) equal the same terms over the selected rows, ``x[rows]``: values and gradients in float64,
    for two marked rows, some, and all. With fewer than two marked rows the model leaves the term out, as before,
    and its gradients stay finite."""
    import torch.nn.functional as F

    from mfm_bench.plugins.models.misa import row_mse

    g = torch.Generator().manual_seed(1)
    x0, y0 = torch.rand(10, 6, dtype=torch.float64, generator=g), torch.rand(10, 6, dtype=torch.float64, generator=g)
    terms = {
        "cmd": lambda a, b, w=None: cmd(a, b, 5, w),
        "difference": lambda a, b, w=None: difference(a, b, True, w),
        "difference, norms not detached": lambda a, b, w=None: difference(a, b, False, w),
        "mse": lambda a, b, w=None: row_mse(a, b, w) if w is not None else F.mse_loss(a, b),
    }
    masks = [torch.arange(10) < 2, torch.rand(10, generator=g) < 0.5, torch.ones(10, dtype=torch.bool)]
    for name, term in terms.items():
        for rows in masks:
            x, y = x0.clone().requires_grad_(True), y0.clone().requires_grad_(True)
            want = term(x[rows], y[rows])
            want_grads = torch.autograd.grad(want, (x, y))
            got = term(x, y, rows)
            got_grads = torch.autograd.grad(got, (x, y))
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14, msg=f"{name}, {int(rows.sum())} rows")
            for gg, wg in zip(got_grads, want_grads):
                torch.testing.assert_close(gg, wg, rtol=1e-10, atol=1e-14, msg=f"{name} gradient")

    spec, train, _, _ = synthetic("regression", n_train=32, n_test=16)
    batch = train.batch(slice(0, 16))
    torch.manual_seed(0)
    model = build("misa", spec)
    full = model.eval()(batch).losses
    mask = dict(batch.mask, audio=batch.mask["audio"].clone(), visual=batch.mask["visual"].clone())
    mask["audio"][1:] = False  # audio in one sample: no audio term at all
    mask["visual"][:] = False  # visual in none
    out = model.train()(batch.replace(mask=mask))
    sum(out.losses.values()).backward()
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.private["audio"][0].weight.grad.abs().sum() > 0  # still reached through the attention
    # every pair of modalities has fewer than two samples with both: no similarity term
    assert float(out.losses["similarity"].detach()) == 0.0 < float(full["similarity"].detach())
