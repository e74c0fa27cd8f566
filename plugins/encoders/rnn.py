"""Recurrent encoders: ``lstm`` and ``gru`` over a modality's sequence (cuDNN whole-sequence calls)."""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.nn import as_sequence, last_valid

from .configs import RNNConfig  # noqa: F401 - the config lives torch-free in configs.py


class RNNEncoder(nn.Module):
    """An LSTM or GRU; pooled output is the hidden state at the last real step (the original MFM reads the last h);
    bidirectional: the forward state at the last real step and the backward state at the first, each direction's
    final state."""

    cell = nn.LSTM

    def __init__(self, input_dim: int, cfg: RNNConfig) -> None:
        super().__init__()
        self.rnn = self.cell(
            input_dim,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.output_dim = cfg.hidden * (2 if cfg.bidirectional else 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = as_sequence(x, mask)  # a vector modality [B, D] is one step; asserts x [B, T, D] otherwise
        # Padding steps are zero vectors (left-padded in the MFN data); zeroing keeps them inert.
        seq, _ = self.rnn(x * mask.unsqueeze(-1).to(x.dtype))  # (B, T, H)
        seq = self.drop(seq)
        if not self.rnn.bidirectional:
            return last_valid(seq, mask), seq
        # each direction's final state: forward at the last real step, backward at the first (where it ends)
        fwd, bwd = seq.chunk(2, dim=-1)  # each (B, T, H)
        return torch.cat([last_valid(fwd, mask), last_valid(bwd.flip(1), mask.flip(1))], dim=-1), seq


class LSTMEncoder(RNNEncoder):
    """LSTM encoder: last real hidden state and the full sequence of hidden states."""

    cell = nn.LSTM


class GRUEncoder(RNNEncoder):
    """GRU encoder: last real hidden state and the full sequence of hidden states."""

    cell = nn.GRU
