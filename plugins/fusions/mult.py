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

Masks are per modality ([B, T_m]); padded keys are ignored. A key sequence with no real step (a missing modality)
would make the attention softmax undefined (NaN): its attention is computed against an unmasked dummy and then
multiplied by zero, so a missing source adds nothing to the residual stream. With one modality the single
"crossmodal" transformer attends to itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.config import option
from mfm_bench.nn import last_valid


@dataclass
class MulTConfig:
    d_model: int = option(32, "common width d of every projected sequence")
    heads: int = option(4, "attention heads (must divide d_model)")
    layers: int = option(2, "layers of each crossmodal transformer")
    self_layers: int = option(1, "layers of the self-attention transformer over each target's concatenated outputs")
    kernel: int = option(1, "kernel size of the temporal 1-D convolution projecting each modality (odd)")
    dropout: float = option(0.1, "dropout on residual branches and the output block")
    attn_dropout: float = option(0.1, "dropout on attention weights")
    embed_dropout: float = option(0.1, "dropout on the projected, position-embedded inputs")

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number, got {self.kernel}")


def sinusoid(T: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """[T, d] sinusoidal position embeddings (Vaswani et al. 2017)."""
    pos = torch.arange(T, device=device, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    freq = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))  # (ceil(d/2),)
    out = torch.zeros(T, d, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return out


def safe_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, heads: int,
                   dropout: float) -> torch.Tensor:
    """Multi-head scaled dot-product attention with a key padding mask, NaN-free for fully masked key sequences.

    q [B, Tq, d], k and v [B, Tk, d] (already projected), key_mask [B, Tk] bool (True = real) -> [B, Tq, d];
    rows whose key sequence has no real step come back as zeros.
    """
    B, Tq, d = q.shape
    Tk = k.shape[1]
    has_key = key_mask.any(1)  # (B,)
    allowed = key_mask | ~has_key.unsqueeze(1)  # a sample with no key attends to all (then zeroed)
    split = lambda x, T: x.view(B, T, heads, d // heads).transpose(1, 2)  # noqa: E731  (B, h, T, d/h)
    out = F.scaled_dot_product_attention(split(q, Tq), split(k, Tk), split(v, Tk),
                                         attn_mask=allowed[:, None, None, :], dropout_p=dropout)  # (B, h, Tq, d/h)
    out = out.transpose(1, 2).reshape(B, Tq, d)  # (B, Tq, d)
    return out * has_key[:, None, None].to(out.dtype)


class CrossmodalLayer(nn.Module):
    """One pre-norm transformer layer whose queries come from ``x`` and keys/values from ``y`` (y = x: self-attention)."""

    def __init__(self, d: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.heads, self.attn_dropout = heads, attn_dropout
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.o = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        k, v = self.kv(self.norm_kv(y)).chunk(2, dim=-1)  # each (B, Ty, d)
        a = safe_attention(self.q(self.norm_q(x)), k, v, y_mask, self.heads, self.attn_dropout if self.training else 0.0)
        x = x + self.drop(self.o(a))  # (B, Tx, d)
        return x + self.drop(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """A stack of :class:`CrossmodalLayer` with a final LayerNorm: target x [B, Tx, d] attends to source y [B, Ty, d]."""

    def __init__(self, d: int, heads: int, layers: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CrossmodalLayer(d, heads, dropout, attn_dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None, y_mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, x if y is None else y, y_mask)
        return self.norm(x)


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
        self.out = nn.Sequential(nn.Linear(self.output_dim, self.output_dim), nn.ReLU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(self.output_dim, self.output_dim))
        self.embed_drop = nn.Dropout(cfg.embed_dropout)

    def embed(self, m: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D_m] -> [B, T, d]: masked 1-D conv over time, scaled, plus position embeddings."""
        x = x * mask.unsqueeze(-1).to(x.dtype)
        h = self.proj[m](x.transpose(1, 2)).transpose(1, 2)  # (B, D, T) -> (B, d, T) -> (B, T, d)
        h = h * math.sqrt(self.cfg.d_model) + sinusoid(h.shape[1], self.cfg.d_model, h.device).to(h.dtype)
        return self.embed_drop(h)

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        for m in self.names:
            assert inputs[m].dim() == 3 and mask[m].shape == inputs[m].shape[:2], \
                f"{m}: expected x [B, T, D] and mask [B, T], got {tuple(inputs[m].shape)} and {tuple(mask[m].shape)}"
        h = {m: self.embed(m, inputs[m], mask[m]) for m in self.names}  # each (B, T_m, d)
        summaries = []
        for b in self.names:
            outs = [self.cross[f"{a}->{b}"](h[b], h[a], mask[a]) for a in self.sources[b]]  # each (B, T_b, d)
            seq = self.memory[b](torch.cat(outs, dim=-1), None, mask[b])  # (B, T_b, d * n_sources)
            summaries.append(last_valid(seq, mask[b]))  # (B, d * n_sources), zeros when b is missing
        z = torch.cat(summaries, dim=-1)  # (B, output_dim)
        return z + self.out(z)
