"""``ef_lstm``: early fusion over time (EF-LSTM); the modalities are concatenated at every step and one LSTM reads them.

Follows the EF-LSTM baseline of Zadeh et al., "Memory Fusion Network for Multi-view Sequential Learning"
(AAAI 2018) and "Tensor Fusion Network for Multimodal Sentiment Analysis" (EMNLP 2017): word-aligned
features of every modality are concatenated at each time step and a single LSTM models the joint sequence.

The reference code is the EF-LSTM of pliang279/MFN (test_mosi.py:152-178): one LSTM over the concatenated features,
its last hidden state, then fc1 (h -> h), ReLU, dropout, fc2 to the output. The fusion is the LSTM; the supervised
model's head (``head_hidden`` 64 = ``hidden`` 64, ``head_dropout``) is fc1/fc2. No dropout touches the fused vector.

It needs aligned sequences (the same number of steps for every modality); a vector modality [B, D] is repeated at
every step; a missing modality contributes zeros, and a step counts as real when any modality is real there.
"""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.nn import aligned_steps, last_valid

from .configs import EFLSTMConfig  # noqa: F401 - the config lives torch-free in configs.py


class EFLSTMFusion(nn.Module):
    """Concatenate raw features [B, T, D_m] of every modality per step, one LSTM, state at the last real step."""

    input_kind = "raw"

    def __init__(self, input_dims: dict[str, int], cfg: EFLSTMConfig) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.rnn = nn.LSTM(
            sum(input_dims.values()),
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            bidirectional=cfg.bidirectional,
        )
        self.drop = nn.Dropout(cfg.fused_dropout)
        self.output_dim = cfg.hidden * (2 if cfg.bidirectional else 1)

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        xs, masks = aligned_steps(
            inputs,
            mask,
            self.names,
            "ef_lstm",
            "align the dataset (e.g. word-level alignment) or use the 'mult' fusion, which takes unaligned sequences",
        )
        steps = [x * k.unsqueeze(-1).to(x.dtype) for x, k in zip(xs, masks)]  # each (B, T, D_m), zeros where not real
        joint_mask = torch.stack(masks, 0).any(0)  # (B, T)
        seq, _ = self.rnn(torch.cat(steps, dim=-1))  # (B, T, sum D_m) -> (B, T, H)
        if not self.rnn.bidirectional:
            return self.drop(last_valid(seq, joint_mask))  # (B, H)
        # each direction's final state: forward at the last real step, backward at the first (where it ends)
        fwd, bwd = seq.chunk(2, dim=-1)  # each (B, T, H)
        return self.drop(torch.cat([last_valid(fwd, joint_mask), last_valid(bwd.flip(1), joint_mask.flip(1))], -1))
