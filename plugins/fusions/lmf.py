"""``lmf``: Low-rank Multimodal Fusion.

Follows Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors" (ACL 2018). TFN's linear
layer on the outer product, h = W · ((z_1; 1) ⊗ ... ⊗ (z_M; 1)), is computed with a rank-r weight tensor
W = Σ_i w_1^(i) ⊗ ... ⊗ w_M^(i) without building the tensor: h = Σ_i Π_m (z_m; 1) · w_m^(i) (eq. 6 of the paper),
plus a bias. The cost is linear in the number of modalities instead of exponential.

By default h is the prediction itself (``hidden`` = the task's width), as in the reference code
(Justin1904/Low-rank-Multimodal-Fusion, model.py:122-170: the factors map to ``output_dim`` and the product plus bias
is returned), with no dropout (the reference defines ``post_fusion_dropout`` but never applies it).

A missing modality (all-False mask) gets a zero vector while its appended 1 stays, exactly as in ``tfn``.
"""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.nn import modality_present, modality_projections, with_one

from .configs import LMFConfig  # noqa: F401 - the config lives torch-free in configs.py


class LMFFusion(nn.Module):
    """h = bias + Σ_i λ_i Π_m (z_m; 1) W_m^(i), with modality-specific factors W_m [r, d_m + 1, width]."""

    input_kind = "pooled"
    predicts = True  # receives out_dim; the instance's ``predicts`` is false with ``head: true``

    def __init__(self, input_dims: dict[str, int], cfg: LMFConfig, out_dim: int = 1) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.predicts = not cfg.head
        width = out_dim if self.predicts else cfg.hidden
        self.proj, dims = modality_projections(input_dims, cfg.proj_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.factors = nn.ParameterDict(
            {m: nn.Parameter(torch.empty(cfg.rank, dims[m] + 1, width)) for m in self.names}
        )
        for w in self.factors.values():
            nn.init.xavier_normal_(w)
        self.rank_weights = nn.Parameter(torch.empty(1, cfg.rank))  # λ_i of the paper's code: a learned mix of ranks
        nn.init.xavier_normal_(self.rank_weights)
        self.bias = nn.Parameter(torch.zeros(width))
        self.output_dim = width

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        prod = None
        for m in self.names:
            z = self.proj[m](inputs[m]) * modality_present(mask[m], keepdim=True).to(
                inputs[m].dtype
            )  # (B, d_m), zeros when missing
            z = with_one(self.drop(z))  # (B, d_m + 1)
            f = torch.einsum("bd,rdh->brh", z, self.factors[m])  # (B, r, hidden)
            prod = f if prod is None else prod * f
        return torch.einsum("or,brh->bh", self.rank_weights, prod) + self.bias  # (B, hidden)
