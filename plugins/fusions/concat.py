"""``concat``: early fusion by concatenating each modality's pooled encoding, then an MLP."""

from __future__ import annotations

import torch
from torch import nn

from .configs import ConcatConfig  # noqa: F401 - the config lives torch-free in configs.py


class ConcatFusion(nn.Module):
    """Concatenate pooled encodings [B, H_m] in modality order, then Linear-ReLU-Dropout."""

    input_kind = "pooled"

    def __init__(self, input_dims: dict[str, int], cfg: ConcatConfig) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.net = nn.Sequential(nn.Linear(sum(input_dims.values()), cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.output_dim = cfg.hidden

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(torch.cat([inputs[m] for m in self.names], dim=-1))  # (B, sum H_m) -> (B, hidden)
