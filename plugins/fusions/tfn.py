"""``tfn``: Tensor Fusion Network.

Follows Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis" (EMNLP 2017): each modality's
embedding z_m is extended with a constant 1, and the fusion is the outer product (z_1; 1) ⊗ (z_2; 1) ⊗ ... ⊗ (z_M; 1),
which holds the unimodal terms, every bimodal interaction and the trimodal one; a fully connected network reads the
flattened tensor. The modality embedding subnetworks of the paper are the encoder plugins here, followed by a
small projection (``proj_dim``) that keeps the tensor of a manageable size.

A missing modality (all-False mask) gets a zero embedding while its appended 1 stays, so the tensor keeps exactly
the terms of the modalities present.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mfm_bench.nn import modality_present, modality_projections, with_one
from .configs import TFNConfig  # noqa: F401 - the config lives torch-free in configs.py


class TFNFusion(nn.Module):
    """Outer product of the (projected) modality vectors, each padded with a 1, then two ReLU layers."""

    input_kind = "pooled"

    def __init__(self, input_dims: dict[str, int], cfg: TFNConfig) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.proj, widths = modality_projections(input_dims, cfg.proj_dim)
        dims = list(widths.values())
        size = math.prod(d + 1 for d in dims)
        if size > cfg.max_tensor:
            raise ValueError(
                f"tfn: the fused tensor would have {size} entries (prod of {[d + 1 for d in dims]}), more than "
                f"max_tensor={cfg.max_tensor}; lower proj_dim or raise max_tensor, or use 'lmf' (low-rank, no tensor)"
            )
        self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(size, cfg.hidden), nn.ReLU(),
                                 nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
        self.output_dim = cfg.hidden

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = None
        for m in self.names:
            z = self.proj[m](inputs[m]) * modality_present(mask[m], keepdim=True).to(inputs[m].dtype)  # (B, d_m), zeros when missing
            z = with_one(z)  # (B, d_m + 1)
            # (B, P) x (B, d_m + 1) -> (B, P * (d_m + 1)), row-major like torch.einsum("bi,bj->bij").flatten(1)
            fused = z if fused is None else (fused.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        return self.net(fused)  # (B, hidden)
