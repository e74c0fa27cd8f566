"""``tfn``: Tensor Fusion Network.

Follows Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis" (EMNLP 2017): each modality's
embedding z_m is extended with a constant 1, and the fusion is the outer product (z_1; 1) ⊗ (z_2; 1) ⊗ ... ⊗ (z_M; 1),
which holds the unimodal terms, every bimodal interaction and the trimodal one; a fully connected network reads the
flattened tensor. The modality embedding subnetworks of the paper are the encoder plugins here, followed by a
small projection (``proj_dim``) that keeps the tensor of a manageable size.

By default the fusion predicts, as the reference code (Justin1904/TensorFusionNetworks, model.py:118-166): dropout on
the flattened tensor only, two ReLU layers, a Linear layer to the task's width, and for a one-value (regression)
prediction the squash sigmoid(.) * 6 - 3 into [-3, 3]. ``output_range: task`` squashes a regression into the
dataset's own range (the supervised model calls :meth:`TFNFusion.set_task`), which is the reference's [-3, 3] on
CMU-MOSI and [1, 5] on ICT-MMMO's regression label. Classification logits and multi-target regressions are not
squashed (the reference is a one-value sentiment regressor only).

A missing modality (all-False mask) gets a zero embedding while its appended 1 stays, so the tensor keeps exactly
the terms of the modalities present.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mfm_bench.contracts import Task
from mfm_bench.nn import modality_present, modality_projections, with_one

from .configs import TFNConfig  # noqa: F401 - the config lives torch-free in configs.py


class TFNFusion(nn.Module):
    """Outer product of the (projected) modality vectors, each padded with a 1, then two ReLU layers and the output."""

    input_kind = "pooled"
    predicts = True  # receives out_dim; the instance's ``predicts`` is false with ``head: true``

    def __init__(self, input_dims: dict[str, int], cfg: TFNConfig, out_dim: int = 1) -> None:
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
        self.net = nn.Sequential(
            nn.Dropout(cfg.dropout),
            nn.Linear(size, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(cfg.hidden_dropout),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
        )
        self.predicts = not cfg.head
        if self.predicts:
            self.net.append(nn.Dropout(cfg.hidden_dropout))
            self.net.append(nn.Linear(cfg.hidden, out_dim))
        self.cfg, self.out_dim = cfg, out_dim
        fixed = isinstance(cfg.output_range, list) and cfg.output_range
        self.range = tuple(cfg.output_range) if self.predicts and out_dim == 1 and fixed else None
        self.output_dim = out_dim if self.predicts else cfg.hidden

    def set_task(self, task: Task) -> None:
        """With ``output_range: task``, squash a regression prediction into ``task.range`` (no-op otherwise)."""
        if self.cfg.output_range == "task" and self.predicts and task.kind == "regression" and task.range:
            self.range = tuple(task.range)

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = None
        for m in self.names:
            z = self.proj[m](inputs[m]) * modality_present(mask[m], keepdim=True).to(
                inputs[m].dtype
            )  # (B, d_m), zeros when missing
            z = with_one(z)  # (B, d_m + 1)
            # (B, P) x (B, d_m + 1) -> (B, P * (d_m + 1)), row-major like torch.einsum("bi,bj->bij").flatten(1)
            fused = z if fused is None else (fused.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        out = self.net(fused)  # (B, out_dim), or (B, hidden) with head: true
        if self.range is not None:
            lo, hi = self.range
            out = torch.sigmoid(out) * (hi - lo) + lo  # the reference's sigmoid * 6 - 3
        return out
