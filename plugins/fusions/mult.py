"""``mult``: Multimodal Transformer (MulT).

Follows Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences" (ACL 2019):

1. each modality's raw sequence is projected by a temporal 1-D convolution to a common width d and gets sinusoidal
   position embeddings;
2. for every ordered pair (source α -> target β), a crossmodal transformer lets β's steps attend to α's steps
   (queries from β, keys and values from α; pre-norm layers, eq. 5 of the paper), so sequences may have different
   lengths and need no alignment;
3. for each target β the crossmodal outputs from all its sources are concatenated along features and read by a
   self-attention transformer; its state at β's last real step is β's summary;
4. the summaries are concatenated, passed through a residual two-layer block and a Linear layer to the prediction.

The defaults follow the reference code (yaohungt/Multimodal-Transformer; docs/baselines.md has the line numbers):
every attention is causal (``attn_mask`` defaults to true in main.py), one LayerNorm serves queries, keys and values,
each transformer re-scales its input by sqrt(width) and adds position embeddings (the self-attention stack too), the
attention dropout is the source (key) modality's (0.1 for text, 0 for audio and visual; 0.1 in the self-attention
stacks), the raw text is dropped out before its projection, and the fusion predicts (``predicts``) with the
reference's output layer instead of handing a vector to an extra head.

Masks are per modality ([B, T_m]); padded keys are ignored (``padding_mask``, an extension the reference lacks). A
vector modality [B, D] is a sequence of one step. A key sequence with no real step (a missing modality)
would make the attention softmax undefined (NaN): its attention is computed against an unmasked dummy and then
multiplied by zero, so a missing source adds nothing to the residual stream. With one modality the single
"crossmodal" transformer attends to itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.nn import CrossmodalTransformer, as_sequence, last_valid, mlp, sinusoid

from .configs import MulTConfig  # noqa: F401 - the config lives torch-free in configs.py


class MulTFusion(nn.Module):
    """Crossmodal attention between every ordered pair of modalities, on sequences of any (different) lengths."""

    input_kind = "raw"
    predicts = True  # receives out_dim; the instance's ``predicts`` is false with ``head: true``

    def __init__(self, input_dims: dict[str, int], cfg: MulTConfig, out_dim: int = 1) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.cfg = cfg
        d = cfg.d_model
        self.proj = nn.ModuleDict(
            {m: nn.Conv1d(dim, d, cfg.kernel, padding=cfg.kernel // 2, bias=False) for m, dim in input_dims.items()}
        )
        self.sources = {b: [a for a in self.names if a != b] or [b] for b in self.names}
        layer = dict(shared_norm=cfg.shared_norm, causal=cfg.causal, relu_dropout=cfg.relu_dropout)
        self.cross = nn.ModuleDict(
            {
                f"{a}->{b}": CrossmodalTransformer(
                    d, cfg.heads, cfg.layers, cfg.dropout, per_modality(cfg.attn_dropout, a, "attn_dropout"), **layer
                )  # the source's attention dropout, as the reference's attn_dropout(_a, _v)
                for b in self.names
                for a in self.sources[b]
            }
        )
        width = {b: d * len(self.sources[b]) for b in self.names}
        self.memory = nn.ModuleDict(
            {
                b: CrossmodalTransformer(
                    width[b], cfg.heads, cfg.self_layers, cfg.dropout, cfg.self_attn_dropout, **layer
                )
                for b in self.names
            }
        )
        fused = sum(width.values())
        self.out = mlp(fused, fused, fused, cfg.out_dropout)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)
        self.input_drop = nn.ModuleDict(
            {m: nn.Dropout(per_modality(cfg.input_dropout, m, "input_dropout")) for m in self.names}
        )  # the reference drops out the raw text before its projection
        self.predicts = not cfg.head
        self.out_layer = nn.Linear(fused, out_dim) if self.predicts else None
        self.output_dim = out_dim if self.predicts else fused

    def position(self, h: torch.Tensor) -> torch.Tensor:
        """[B, T, w] -> h * sqrt(w) + position embeddings, dropped out (the reference TransformerEncoder's input)."""
        w = h.shape[-1]
        return self.embed_drop(h * math.sqrt(w) + sinusoid(h.shape[1], w, h.device).to(h.dtype))

    def sequences(
        self,
        inputs: dict[str, torch.Tensor],
        mask: dict[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Each target's self-attention output [B, T_b, d * n_sources] before pooling, and the masks [B, T_b] used."""
        steps = {m: as_sequence(inputs[m], mask[m]) for m in self.names}  # vector modalities become one step
        if self.cfg.padding_mask:
            mask = {m: k for m, (_, k) in steps.items()}
        else:
            mask = {m: torch.ones_like(k) for m, (_, k) in steps.items()}
        proj = {
            m: self.proj[m](self.input_drop[m](x * mask[m].unsqueeze(-1).to(x.dtype)).transpose(1, 2)).transpose(1, 2)
            for m, (x, _) in steps.items()
        }  # (B, D, T) -> (B, d, T) -> each (B, T_m, d)
        h = {m: self.position(p) for m, p in proj.items()}
        out = {}
        for b in self.names:
            outs = [self.cross[f"{a}->{b}"](h[b], h[a], mask[a]) for a in self.sources[b]]  # each (B, T_b, d)
            cat = torch.cat(outs, dim=-1)  # (B, T_b, d * n_sources)
            out[b] = self.memory[b](self.position(cat) if self.cfg.rescale_self else cat, None, mask[b])
        return out, mask

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        seqs, masks = self.sequences(inputs, mask)
        summaries = [last_valid(seqs[b], masks[b]) for b in self.names]  # each (B, w_b); zeros when b is missing
        z = torch.cat(summaries, dim=-1)  # (B, fused)
        z = z + self.out(z)  # the reference's residual block
        return self.out_layer(z) if self.predicts else z
