"""Distribution-matching losses for latent codes: MMD to a N(0, I) prior (three kernels) and the Gaussian KL.

MFM (Tsai et al., ICLR 2019) regularises every latent code with the maximum mean discrepancy between the codes of a
batch and an equally sized fresh sample of the prior N(0, I).

Kernels (``x``: [N, D], ``y``: [M, D]; ``d2`` the squared Euclidean distance, ``D`` the code size):

- ``original``: ``k(x, y) = exp(-d2 / D**2)``, the kernel of the original code (squared difference averaged over
  dimensions, then divided by the dimension again), with the *biased* V-statistic estimator (diagonals included).
- ``rbf``: ``k(x, y) = exp(-d2 / (2 D))``, Gaussian kernel with variance D (a median-like bandwidth for
  N(0, I) codes), unbiased U-statistic estimator.
- ``imq``: ``k(x, y) = C / (C + d2)`` with ``C = 2 D``, the inverse multiquadric kernel of Wasserstein
  auto-encoders (Tolstikhin et al. 2018), unbiased estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

Kernel = Literal["original", "rbf", "imq"]
KERNELS: tuple[str, ...] = ("original", "rbf", "imq")


def sq_dists(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances [N, M] computed by differences (exact, no cancellation; codes are small)."""
    assert x.dim() == 2 and y.dim() == 2 and x.shape[1] == y.shape[1], f"x {tuple(x.shape)} vs y {tuple(y.shape)}"
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)  # (N, M, D) -> (N, M)


def kernel_original(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dim = x.shape[1]
    return torch.exp(-sq_dists(x, y) / float(dim * dim))


def kernel_rbf(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.exp(-sq_dists(x, y) / (2.0 * x.shape[1]))


def kernel_imq(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    c = 2.0 * x.shape[1]
    return c / (c + sq_dists(x, y))


_KERNEL_FNS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "original": kernel_original,
    "rbf": kernel_rbf,
    "imq": kernel_imq,
}


def _off_diagonal_mean(k: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd(x: torch.Tensor, y: torch.Tensor, kernel: Kernel = "original", unbiased: bool | None = None) -> torch.Tensor:
    """MMD^2 between samples ``x`` [N, D] and ``y`` [M, D].

    ``unbiased=None`` picks the estimator of the kernel: biased for ``original`` (as the original code), unbiased
    for ``rbf`` and ``imq``. The unbiased estimator needs N, M >= 2 and may be slightly negative.
    """
    if kernel not in _KERNEL_FNS:
        raise ValueError(f"unknown MMD kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    k = _KERNEL_FNS[kernel]
    if unbiased is None:
        unbiased = kernel != "original"
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    if unbiased:
        if x.shape[0] < 2 or y.shape[0] < 2:
            return x.new_zeros(())
        return _off_diagonal_mean(kxx) + _off_diagonal_mean(kyy) - 2.0 * kxy.mean()
    return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()


def mmd_to_prior(
    z: torch.Tensor, kernel: Kernel = "original", unbiased: bool | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """MMD^2 between codes ``z`` [B, D] and a fresh N(0, I) sample of the same shape (drawn on z's device).

    Computed in float32 at least, so that bf16 autocast does not flatten the (small) kernel differences.
    """
    zf = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
    prior = torch.randn(zf.shape, dtype=zf.dtype, device=zf.device, generator=generator)
    return mmd(zf, prior, kernel, unbiased)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over code dimensions and averaged over the batch.

    (The original code sums over the batch as well, which ties the weight to the batch size.)
    """
    if mu.dtype in (torch.float16, torch.bfloat16):  # keep the sum accurate under autocast
        mu, logvar = mu.float(), logvar.float()
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())  # (B, D)
    return kl.sum(dim=1).mean()


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (the reparameterisation trick)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


__all__ = [
    "mmd",
    "mmd_to_prior",
    "kl_standard_normal",
    "reparameterise",
    "KERNELS",
    "sq_dists",
    "kernel_original",
    "kernel_rbf",
    "kernel_imq",
]
