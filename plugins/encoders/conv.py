"""Convolutional encoders for non-sequence modalities: ``conv-image`` (2-D) and ``conv-signal`` (1-D).

Both obey the encoder contract, ``(x, mask) -> (pooled [B, H], sequence [B, T', H])``:

- ``conv-image`` reads an image modality [B, C, H, W] (``input_dim`` = C); its "sequence" is the final feature
  map read as H'*W' positions, so sequence-reading fusions still get something meaningful.
- ``conv-signal`` reads a 1-D signal: a vector modality [B, D] is one channel of length D; a sequence
  modality [B, T, D] is D channels over T steps (padding steps zeroed first). Its sequence output is the
  conv feature map over positions. Padding is masked through the stack: a position of each layer is real when
  its stride block of the layer below holds a real position, the activations of the other positions are zeroed
  (as a convolution's own zero padding), and the pooled output is the mean over the real positions of the last
  layer. So padding after the real steps, of any length, leaves the encoding exactly as without it (before the
  padding is a multiple of 4 steps: the strides' grid). Until this was fixed the mean took every position,
  padding included, and a sample's encoding changed with the padding around it. A vector has no padding: the
  mean over every position, as before.

The mask of an image or vector modality is [B, 1] (one "step"); a sample whose mask is all False (a missing
modality) gets a zero pooled vector, as ``mean`` and ``lstm`` give for a sample with no real step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.nn import masked_mean

from .configs import ConvConfig  # noqa: F401 - the config lives torch-free in configs.py


def _present(mask: torch.Tensor) -> torch.Tensor:
    """[B, 1] float: 1 where the sample has the modality at all."""
    return mask.reshape(mask.shape[0], -1).any(dim=1, keepdim=True).float()


class ImageConvEncoder(nn.Module):
    """Three 3x3 conv layers (stride 1, 2, 2) with ReLU, then global average pooling; sized for 8x8 to 32x32."""

    def __init__(self, input_dim: int, cfg: ConvConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.net = nn.Sequential(
            nn.Conv2d(input_dim, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * c, cfg.hidden, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.input_dim = input_dim
        self.output_dim = cfg.hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"conv-image expects an image modality [B, {self.input_dim}, H, W], got {tuple(x.shape)}; "
                "use conv-signal, mean or lstm for vector and sequence modalities"
            )
        fmap = self.net(x)  # (B, H, h, w)
        seq = fmap.flatten(2).transpose(1, 2)  # (B, h*w, H)
        pooled = self.drop(seq.mean(1)) * _present(mask)  # (B, H)
        return pooled, seq


class SignalConvEncoder(nn.Module):
    """Three 1-D conv layers (kernel 5, stride 1, 2, 2) with ReLU, then average pooling over the positions that
    read real steps."""

    def __init__(self, input_dim: int, cfg: ConvConfig) -> None:
        super().__init__()
        self.input_dim = input_dim
        # The factory cannot tell a vector modality (1 channel of length D) from a sequence one (D channels), so
        # both first layers exist; the one never used gets no gradient and is skipped by the optimiser.
        self.vector_net = self._stack(1, cfg)
        self.sequence_net = self._stack(input_dim, cfg) if input_dim > 1 else self.vector_net
        self.drop = nn.Dropout(cfg.dropout)
        self.output_dim = cfg.hidden

    @staticmethod
    def _stack(in_ch: int, cfg: ConvConfig) -> nn.Sequential:
        c = cfg.channels
        return nn.Sequential(
            nn.Conv1d(in_ch, c, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(c, 2 * c, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(2 * c, cfg.hidden, 5, stride=2, padding=2),
            nn.ReLU(),
        )

    def masked_stack(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, D, T] (padding zeroed), mask [B, T] -> (feature map [B, H, T'], its real positions [B, T'] bool).
        After each conv layer a position is real when its stride block below holds a real one (a max-pool of
        the mask with kernel = stride, which gives the conv's length ceil(T / stride)); the others are zeroed
        after the ReLU, so the next layer reads them as zero padding."""
        m = mask.to(x.dtype).unsqueeze(1)  # (B, 1, T)
        for layer in self.sequence_net:
            x = layer(x)
            if isinstance(layer, nn.Conv1d) and layer.stride[0] > 1:
                m = F.max_pool1d(m, layer.stride[0], layer.stride[0], ceil_mode=True)  # (B, 1, T')
            elif isinstance(layer, nn.ReLU):
                x = x * m
        return x, m.squeeze(1) > 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 2:  # vector [B, D]: one channel of length D, every position real
            seq = self.vector_net(x.unsqueeze(1)).transpose(1, 2)  # (B, D', H)
            pooled = seq.mean(1)
        elif x.dim() == 3:  # sequence [B, T, D]: D channels over T steps
            x = x * mask.unsqueeze(-1).to(x.dtype)
            fmap, real = self.masked_stack(x.transpose(1, 2), mask)  # (B, H, T'), (B, T')
            seq = fmap.transpose(1, 2)  # (B, T', H), zeros at padded positions
            pooled = masked_mean(seq, real)  # padded positions left out
        else:
            raise ValueError(
                f"conv-signal expects a vector [B, D] or sequence [B, T, D] modality, got {tuple(x.shape)}; "
                "use conv-image for images"
            )
        return self.drop(pooled) * _present(mask), seq  # (B, H), (B, T', H)
