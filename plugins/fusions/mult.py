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
each transformer re-scales its input by sqrt(width) and adds position embeddings (the self-attention stack too), and
the fusion predicts (``predicts``) with the reference's output layer instead of handing a vector to an extra head.

Masks are per modality ([B, T_m]); padded keys are ignored (``padding_mask``, an extension the reference lacks). A vector modality [B, D] is a sequence of one step. A key sequence with no real step (a missing modality)
would make the attention softmax undefined (NaN): its attention is computed against an unmasked dummy and then
multiplied by zero, so a missing source adds nothing to the residual stream. With one modality the single
"crossmodal" transformer attends to itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from mfm_bench.config import option
from mfm_bench.nn import CrossmodalTransformer, as_sequence, last_valid, mlp, sinusoid


@dataclass
class MulTConfig:
    d_model: int = option(32, "common width d of every projected sequence (reference: 30)")
    heads: int = option(4, "attention heads (must divide d_model; reference: 5)")
    layers: int = option(2, "layers of each crossmodal transformer (reference: 5)")
    self_layers: int = option(1, "layers of the self-attention transformer over each target's concatenated outputs "
                                 "(reference: max(layers, 3))")
    kernel: int = option(1, "kernel size of the temporal 1-D convolution projecting each modality (odd; reference: 1)")
    dropout: float = option(0.1, "dropout on residual branches (reference res_dropout 0.1)")
    relu_dropout: float = option(0.1, "dropout between the feed-forward layers (reference relu_dropout 0.1)")
    attn_dropout: float = option(0.1, "dropout on attention weights (reference: 0.1 for text targets, 0 for the others)")
    embed_dropout: float = option(0.25, "dropout on each transformer's scaled, position-embedded input (reference 0.25)")
    out_dropout: float = option(0.0, "dropout inside the residual output block (reference out_dropout 0.0)")
    causal: bool = option(True, "causal attention in every layer, as the reference's default attn_mask "
                                "(main.py: --attn_mask is store_false); false: every step reads every step")
    shared_norm: bool = option(True, "one LayerNorm for queries, keys and values, as the reference layer; "
                                     "false: keys/values get their own LayerNorm (our earlier layer)")
    rescale_self: bool = option(True, "re-scale by sqrt(width) and add position embeddings before the self-attention "
                                      "stack, as the reference's TransformerEncoder does; false: our earlier stack")
    padding_mask: bool = option(True, "ignore padded steps (keys and the summary step) and missing modalities: an "
                                      "extension; false: as the reference, attend to every step, summary at the last")
    head: bool = option(False, "false: a Linear output layer predicts, as the reference; true: output the fused "
                               "vector for the supervised model's MLP head (our earlier network)")

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number, got {self.kernel}")


class MulTFusion(nn.Module):
    """Crossmodal attention between every ordered pair of modalities, on sequences of any (different) lengths."""

    input_kind = "raw"
    predicts = True  # receives out_dim; the instance's ``predicts`` is false with ``head: true``

    def __init__(self, input_dims: dict[str, int], cfg: MulTConfig, out_dim: int = 1) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.cfg = cfg
        d = cfg.d_model
        self.proj = nn.ModuleDict({m: nn.Conv1d(dim, d, cfg.kernel, padding=cfg.kernel // 2, bias=False)
                                   for m, dim in input_dims.items()})
        self.sources = {b: [a for a in self.names if a != b] or [b] for b in self.names}
        layer = dict(shared_norm=cfg.shared_norm, causal=cfg.causal, relu_dropout=cfg.relu_dropout)
        self.cross = nn.ModuleDict({
            f"{a}->{b}": CrossmodalTransformer(d, cfg.heads, cfg.layers, cfg.dropout, cfg.attn_dropout, **layer)
            for b in self.names for a in self.sources[b]
        })
        width = {b: d * len(self.sources[b]) for b in self.names}
        self.memory = nn.ModuleDict({
            b: CrossmodalTransformer(width[b], cfg.heads, cfg.self_layers, cfg.dropout, cfg.attn_dropout, **layer)
            for b in self.names
        })
        fused = sum(width.values())
        self.out = mlp(fused, fused, fused, cfg.out_dropout)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)
        self.predicts = not cfg.head
        self.out_layer = nn.Linear(fused, out_dim) if self.predicts else None
        self.output_dim = out_dim if self.predicts else fused

    def position(self, h: torch.Tensor) -> torch.Tensor:
        """[B, T, w] -> h * sqrt(w) + position embeddings, dropped out (the reference TransformerEncoder's input)."""
        w = h.shape[-1]
        return self.embed_drop(h * math.sqrt(w) + sinusoid(h.shape[1], w, h.device).to(h.dtype))

    def sequences(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor],
                  ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Each target's self-attention output [B, T_b, d * n_sources] before pooling, and the masks [B, T_b] used."""
        steps = {m: as_sequence(inputs[m], mask[m]) for m in self.names}  # vector modalities become one step
        if self.cfg.padding_mask:
            mask = {m: k for m, (_, k) in steps.items()}
        else:
            mask = {m: torch.ones_like(k) for m, (_, k) in steps.items()}
        proj = {m: self.proj[m]((x * mask[m].unsqueeze(-1).to(x.dtype)).transpose(1, 2)).transpose(1, 2)
                for m, (x, _) in steps.items()}  # (B, D, T) -> (B, d, T) -> each (B, T_m, d)
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
