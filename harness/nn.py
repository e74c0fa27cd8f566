"""Small building blocks shared by models: task heads, task losses, masked pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .contracts import Task


class Head(nn.Module):
    """Prediction head chosen from the task: Linear, ReLU, Dropout, Linear to ``task.output_dim``.

    Regression returns [B]; classification logits [B, C]; multi_regression [B, K].
    """

    def __init__(self, task: Task, in_dim: int, hidden: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.task = task
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, task.output_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return shape_prediction(self.task, self.net(h))


def shape_prediction(task: Task, out: torch.Tensor) -> torch.Tensor:
    """[B, output_dim] -> the prediction shape of ``task`` ([B] for regression)."""
    return out.squeeze(-1) if task.kind == "regression" else out


def task_loss(task: Task, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 for (multi-)regression, as MFM and MFN train; cross-entropy for classification."""
    if task.kind == "classification":
        return F.cross_entropy(prediction, target.long())
    assert prediction.shape == target.shape, f"prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}"
    return F.l1_loss(prediction, target.float())


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of x [B, T, H] at real steps (mask [B, T]); zeros for a sample with no real step."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def last_valid(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The state at the last real step of each sample: seq [B, T, H], mask [B, T] -> [B, H] (zeros if none)."""
    B, T, _ = seq.shape
    steps = torch.arange(T, device=seq.device).expand(B, T)
    idx = torch.where(mask, steps, torch.full_like(steps, -1)).max(dim=1).values  # (B,)
    out = seq[torch.arange(B, device=seq.device), idx.clamp_min(0)]
    return out * (idx >= 0).unsqueeze(-1).to(seq.dtype)
