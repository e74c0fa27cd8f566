"""``mean`` encoder: masked mean over time, then an MLP. Also serves vector modalities."""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.nn import as_sequence, masked_mean

from .configs import MeanConfig  # noqa: F401 - the config lives torch-free in configs.py


class MeanEncoder(nn.Module):
    """Masked mean of the real steps, then Linear-ReLU; the sequence output is the MLP applied per step."""

    def __init__(self, input_dim: int, cfg: MeanConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(input_dim, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.output_dim = cfg.hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = as_sequence(x, mask)  # a vector modality [B, D] is one step
        pooled = self.mlp(masked_mean(x, mask))  # (B, H)
        return pooled, self.mlp(x) * mask.unsqueeze(-1).to(x.dtype)  # (B, T, H)
