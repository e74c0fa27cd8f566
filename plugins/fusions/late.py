"""``late``: late fusion; one head per modality, predictions averaged over the modalities present."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mfm_bench.config import option


@dataclass
class LateConfig:
    hidden: int = option(32, "hidden width of each unimodal head")
    dropout: float = option(0.1, "dropout inside each head")


class LateFusion(nn.Module):
    """Each modality's pooled encoding goes through its own head; the fusion is the mean of the unimodal
    predictions over the modalities present in each sample (a missing modality does not vote)."""

    input_kind = "pooled"
    predicts = True

    def __init__(self, input_dims: dict[str, int], cfg: LateConfig, out_dim: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, out_dim))
            for m, d in input_dims.items()
        })
        self.output_dim = out_dim

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        preds = torch.stack([self.heads[m](inputs[m]) for m in self.heads], dim=1)  # (B, M, out)
        present = torch.stack([mask[m].reshape(mask[m].shape[0], -1).any(1) for m in self.heads], dim=1)  # (B, M)
        w = present.to(preds.dtype)
        w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))  # nothing present: plain mean
        return (preds * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True)  # (B, out)
