"""The MMD and KL losses against float64 NumPy references, and their behaviour on prior vs shifted samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfm_bench.losses import PriorMMD, kl_standard_normal, mmd, mmd_to_prior, reparameterise


def np_kernel(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    d = x.shape[1]
    k = np.empty((len(x), len(y)))
    for i in range(len(x)):  # plain loops: an independent reference
        for j in range(len(y)):
            d2 = float(((x[i] - y[j]) ** 2).sum())
            if kind == "original":
                k[i, j] = np.exp(-(((x[i] - y[j]) ** 2).mean()) / d)  # the original code: mean over dims, / dim
            elif kind == "rbf":
                k[i, j] = np.exp(-d2 / (2.0 * d))
            else:
                k[i, j] = 2.0 * d / (2.0 * d + d2)
    return k


def np_mmd(x: np.ndarray, y: np.ndarray, kind: str, unbiased: bool) -> float:
    kxx, kyy, kxy = np_kernel(x, x, kind), np_kernel(y, y, kind), np_kernel(x, y, kind)
    if unbiased:
        n, m = len(x), len(y)
        return float(
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())


@pytest.mark.parametrize(
    "kind,unbiased", [("original", False), ("original", True), ("rbf", True), ("rbf", False), ("imq", True)]
)
def test_mmd_matches_float64_numpy(kind: str, unbiased: bool) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(17, 6)) * 1.5, rng.normal(size=(13, 6)) + 0.7
    ours = mmd(torch.from_numpy(x), torch.from_numpy(y), kind, unbiased=unbiased)
    assert ours.dtype == torch.float64
    assert abs(float(ours) - np_mmd(x, y, kind, unbiased)) < 1e-12
    # float32 stays close as well
    ours32 = mmd(torch.from_numpy(x).float(), torch.from_numpy(y).float(), kind, unbiased=unbiased)
    assert abs(float(ours32) - np_mmd(x, y, kind, unbiased)) < 1e-5


def test_default_estimators() -> None:
    rng = np.random.default_rng(0)
    x, y = torch.from_numpy(rng.normal(size=(10, 4))), torch.from_numpy(rng.normal(size=(10, 4)))
    assert float(mmd(x, y, "original")) == pytest.approx(np_mmd(x.numpy(), y.numpy(), "original", False), abs=1e-12)
    assert float(mmd(x, y, "imq")) == pytest.approx(np_mmd(x.numpy(), y.numpy(), "imq", True), abs=1e-12)
    with pytest.raises(ValueError, match="unknown MMD kernel"):
        mmd(x, y, "laplace")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["original", "rbf", "imq"])
def test_mmd_small_for_prior_large_for_shifted(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    dim, n = 16, 256
    same = torch.stack([mmd_to_prior(torch.randn(n, dim, generator=g), kind, generator=g) for _ in range(5)]).mean()
    shifted = torch.stack(
        [mmd_to_prior(torch.randn(n, dim, generator=g) + 1.0, kind, generator=g) for _ in range(5)]
    ).mean()
    scaled = torch.stack(
        [mmd_to_prior(3.0 * torch.randn(n, dim, generator=g), kind, generator=g) for _ in range(5)]
    ).mean()
    assert abs(float(same)) < float(shifted) / 10, (kind, float(same), float(shifted))
    assert abs(float(same)) < float(scaled) / 10, (kind, float(same), float(scaled))


def test_mmd_to_prior_gradients_and_low_precision() -> None:
    z = (torch.randn(32, 8) + 2.0).requires_grad_()
    loss = mmd_to_prior(z)
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert mmd_to_prior(torch.randn(8, 4).bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("kind", ["original", "rbf", "imq"])
@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("n, m, dim", [(32, 32, 80), (5, 7, 3), (2, 2, 1), (1, 1, 4)])
def test_fused_prior_mmd_equals_mmd(kind: str, unbiased: bool, n: int, m: int, dim: int) -> None:
    """MFM's fast path computes the MMD as one node with a closed-form gradient: the same value and gradient as
    mmd() and its autograd graph, in float64 (codes spread out and close together, so the kernel's slope matters)."""
    g = torch.Generator().manual_seed(n + m + dim)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * torch.tensor([0.1, 2.0]).repeat(n)[:n, None]
    x.requires_grad_()
    y = torch.randn(m, dim, generator=g, dtype=torch.float64)
    want, got = mmd(x, y, kind, unbiased), PriorMMD.apply(x, y, kind, unbiased)
    torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-14)
    if not want.requires_grad:  # the U-statistic of a single code: zero, with no gradient to speak of
        assert float(got.detach()) == 0.0
        return
    (gw,) = torch.autograd.grad(want, x)
    (gg,) = torch.autograd.grad(got, x)
    assert gw.abs().max() > 0
    torch.testing.assert_close(gg, gw, rtol=1e-10, atol=1e-15)


def test_fused_mmd_to_prior_draws_the_same_prior() -> None:
    z = torch.randn(16, 8) * 1.5
    for kind in ("original", "imq"):
        plain = mmd_to_prior(z, kind, generator=torch.Generator().manual_seed(4))
        fused = mmd_to_prior(z, kind, generator=torch.Generator().manual_seed(4), fused=True)
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="unknown MMD kernel"):
        mmd_to_prior(z, "laplace", fused=True)  # type: ignore[arg-type]


def test_kl_matches_closed_form_and_reparameterisation() -> None:
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) * 0.3
    ref = np.mean(np.sum(-0.5 * (1 + logvar - mu**2 - np.exp(logvar)), axis=1))
    assert float(kl_standard_normal(torch.from_numpy(mu), torch.from_numpy(logvar))) == pytest.approx(ref, abs=1e-12)
    assert float(kl_standard_normal(torch.zeros(4, 3), torch.zeros(4, 3))) == 0.0
    assert kl_standard_normal(torch.ones(4, 3).bfloat16(), torch.zeros(4, 3).bfloat16()).dtype == torch.float32
    torch.manual_seed(0)
    m, lv = torch.full((20000, 2), 1.5), torch.full((20000, 2), np.log(0.25))
    z = reparameterise(m, lv)
    assert float(z.mean()) == pytest.approx(1.5, abs=0.02) and float(z.std()) == pytest.approx(0.5, abs=0.02)
