"""``late``: late fusion; one head per modality, predictions averaged over the modalities present.

Follows the late-fusion baselines of multimodal sentiment analysis (e.g. the "Late Fusion" rows of Zadeh et al.,
"Tensor Fusion Network for Multimodal Sentiment Analysis", EMNLP 2017): unimodal models are trained jointly and only
their predictions are combined, either by a plain mean or (``weighting: learned``) by a learned weight per modality.
"""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.nn import mlp, modality_present

from .configs import LateConfig  # noqa: F401 - the config lives torch-free in configs.py


class LateFusion(nn.Module):
    """Each modality's pooled encoding goes through its own head; the fusion is the mean of the unimodal
    predictions over the modalities present in each sample (a missing modality does not vote).

    With ``weighting: learned`` the mean is weighted by a softmax, over the present modalities, of one learned
    logit per modality (all start at zero, so training starts from the plain mean).
    """

    input_kind = "pooled"
    predicts = True

    def __init__(self, input_dims: dict[str, int], cfg: LateConfig, out_dim: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({m: mlp(d, cfg.hidden, out_dim, cfg.dropout) for m, d in input_dims.items()})
        self.logits = nn.Parameter(torch.zeros(len(input_dims))) if cfg.weighting == "learned" else None
        self.output_dim = out_dim

    def weights(self, present: torch.Tensor) -> torch.Tensor:
        """present [B, M] bool -> voting weights [B, M], summing to 1 (uniform when nothing is present)."""
        w = present.to(torch.get_default_dtype())
        w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))  # nothing present: every modality votes
        if self.logits is None:
            return w / w.sum(1, keepdim=True)
        scores = self.logits.unsqueeze(0).expand_as(w).masked_fill(w == 0, float("-inf"))  # (B, M)
        return torch.softmax(scores, dim=1)

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        preds = torch.stack([self.heads[m](inputs[m]) for m in self.heads], dim=1)  # (B, M, out)
        present = torch.stack([modality_present(mask[m]) for m in self.heads], dim=1)  # (B, M)
        w = self.weights(present).to(preds.dtype)
        return (preds * w.unsqueeze(-1)).sum(1)  # (B, out)
