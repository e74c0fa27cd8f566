"""Building blocks of MFM (``mfm.py``): code encoders, factor maps, sequence decoders, frozen calls.

Names follow the paper: codes ``z`` (what the MMD prior regularises), factors ``F = map(z)`` (what decoders and
the label head read), reconstructions ``x_hat``. Blocks other models share (sequence helpers, the label head, the
masked MSE) live in :mod:`mfm_bench.nn`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.encoder_kinds import check_encoded
from mfm_bench.nn import as_sequence


class CodeEncoder(nn.Module):
    """An encoder plugin, then a Linear layer to the code (the original: LSTM, last hidden state, Linear).

    With ``variational`` a second Linear gives the log-variance (the ``kl`` variant). ``inner``: a Linear(H, Z)
    before both, as the original ``MFM_KL`` (``encoderLSTM``'s own Linear, then ``last_to_z*_fc1`` and
    ``last_to_logvarz*_fc1``). ``sequence_input``: the encoder reads sequences only, so a vector [B, D] reaches it
    as one step; otherwise inputs go as they are."""

    def __init__(
        self,
        encoder: nn.Module,
        code_dim: int,
        variational: bool = False,
        sequence_input: bool = True,
        name: str = "",
        inner: bool = False,
    ) -> None:
        super().__init__()
        self.encoder, self.sequence_input = encoder, sequence_input
        self.name = name  # what it reads (a modality), for the message of an encoder that breaks its contract
        self.inner = nn.Linear(encoder.output_dim, code_dim) if inner else None
        width = code_dim if inner else encoder.output_dim
        self.to_code = nn.Linear(width, code_dim)
        self.to_logvar = nn.Linear(width, code_dim) if variational else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.sequence_input:
            x, mask = as_sequence(x, mask)
        pooled, _ = check_encoded(self.encoder, self.name, x, self.encoder(x, mask))  # (B, H)
        if self.inner is not None:
            pooled = self.inner(pooled)  # (B, Z)
        logvar = self.to_logvar(pooled) if self.to_logvar is not None else None
        return self.to_code(pooled), logvar  # (B, Z), (B, Z) or None


class FactorMap(nn.Module):
    """F = relu(fc2(dropout(relu(fc1(z))))), z [B, Z] -> F [B, size] (the original's z-to-f maps)."""

    def __init__(self, code_dim: int, size: int, dropout: float) -> None:
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(code_dim, size), nn.Linear(size, size), nn.Dropout(dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(self.drop(F.relu(self.fc1(z)))))


class SequenceDecoder(nn.Module):
    """The generative network G_i: an LSTM cell of width ``in_dim`` fed the factors at step 0 and its own hidden
    state afterwards, for ``steps`` steps, with a Linear to the modality's feature dim at each step (the original
    decoderLSTM). Autoregressive, so a per-step cell loop; the Linear runs once over the stacked states."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(in_dim, in_dim)
        self.out = nn.Linear(in_dim, out_dim)

    def forward(self, f: torch.Tensor, steps: int) -> torch.Tensor:
        h = f.new_zeros(f.shape)
        c = f.new_zeros(f.shape)
        inp, states = f, []
        for _ in range(steps):
            h, c = self.cell(inp, (h, c))
            states.append(h)
            inp = h
        return self.out(torch.stack(states, dim=1))  # (B, steps, in_dim) -> (B, steps, D)


def frozen_call(module: nn.Module, *args: Any) -> Any:
    """Call ``module`` with its parameters detached: gradients flow to the inputs, never to the module.

    Surrogate inference trains its encoders through the full model's decoders and head this way, so the
    surrogate losses cannot move the full model."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return torch.func.functional_call(module, params, args)
