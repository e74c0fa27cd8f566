"""``mult``: Multimodal Transformer (MulT).

Follows Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences" (ACL 2019):

1. each modality's raw sequence is projected by a temporal 1-D convolution to a common width d and gets sinusoidal
   position embeddings;
2. for every ordered pair (source α -> target β), a crossmodal transformer lets β's steps attend to α's steps
   (queries from β, keys and values from α; pre-norm layers, eq. 5 of the paper), so sequences may have different
   lengths and need no alignment;
3. for each target β the crossmodal outputs from all its sources are concatenated along features and read by a
   self-attention transformer; its state at β's last real step is β's summary;
4. the summaries are concatenated, passed through a residual two-layer block, and form the fused vector.

Masks are per modality ([B, T_m]); padded keys are ignored. A vector modality [B, D] is a sequence of one step. A key sequence with no real step (a missing modality)
would make the attention softmax undefined (NaN): its attention is computed against an unmasked dummy and then
multiplied by zero, so a missing source adds nothing to the residual stream. With one modality the single
"crossmodal" transformer attends to itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mfm_bench.nn import CrossmodalTransformer, as_sequence, last_valid, mlp, sinusoid
from .configs import MulTConfig  # noqa: F401 - the config lives torch-free in configs.py


class MulTFusion(nn.Module):
    """Crossmodal attention between every ordered pair of modalities, on sequences of any (different) lengths."""

    input_kind = "raw"

    def __init__(self, input_dims: dict[str, int], cfg: MulTConfig) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.cfg = cfg
        d = cfg.d_model
        self.proj = nn.ModuleDict({m: nn.Conv1d(dim, d, cfg.kernel, padding=cfg.kernel // 2, bias=False)
                                   for m, dim in input_dims.items()})
        self.sources = {b: [a for a in self.names if a != b] or [b] for b in self.names}
        self.cross = nn.ModuleDict({
            f"{a}->{b}": CrossmodalTransformer(d, cfg.heads, cfg.layers, cfg.dropout, cfg.attn_dropout)
            for b in self.names for a in self.sources[b]
        })
        width = {b: d * len(self.sources[b]) for b in self.names}
        self.memory = nn.ModuleDict({
            b: CrossmodalTransformer(width[b], cfg.heads, cfg.self_layers, cfg.dropout, cfg.attn_dropout)
            for b in self.names
        })
        self.output_dim = sum(width.values())
        self.out = mlp(self.output_dim, self.output_dim, self.output_dim, cfg.dropout)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)

    def embed(self, m: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D_m] -> [B, T, d]: masked 1-D conv over time, scaled, plus position embeddings."""
        x = x * mask.unsqueeze(-1).to(x.dtype)
        h = self.proj[m](x.transpose(1, 2)).transpose(1, 2)  # (B, D, T) -> (B, d, T) -> (B, T, d)
        h = h * math.sqrt(self.cfg.d_model) + sinusoid(h.shape[1], self.cfg.d_model, h.device).to(h.dtype)
        return self.embed_drop(h)

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        steps = {m: as_sequence(inputs[m], mask[m]) for m in self.names}  # vector modalities become one step
        mask = {m: k for m, (_, k) in steps.items()}
        h = {m: self.embed(m, x, mask[m]) for m, (x, _) in steps.items()}  # each (B, T_m, d)
        summaries = []
        for b in self.names:
            outs = [self.cross[f"{a}->{b}"](h[b], h[a], mask[a]) for a in self.sources[b]]  # each (B, T_b, d)
            seq = self.memory[b](torch.cat(outs, dim=-1), None, mask[b])  # (B, T_b, d * n_sources)
            summaries.append(last_valid(seq, mask[b]))  # (B, d * n_sources), zeros when b is missing
        z = torch.cat(summaries, dim=-1)  # (B, output_dim)
        return z + self.out(z)
