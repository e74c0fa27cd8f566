"""Building blocks of MFM (``mfm.py``): code encoders, factor maps, sequence decoders, label heads, helpers.

Names follow the paper: codes ``z`` (what the MMD prior regularises), factors ``F = map(z)`` (what decoders and
the label head read), reconstructions ``x_hat``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mfm_bench.contracts import Task
from mfm_bench.nn import shape_prediction


def as_sequence(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A modality as a sequence: x [B, T, D] stays; a vector [B, D] becomes one step [B, 1, D]; mask [B, T] bool."""
    B = x.shape[0]
    if x.dim() == 2:
        return x.unsqueeze(1), mask.reshape(B, -1).any(1, keepdim=True)  # (B, 1, D), (B, 1)
    assert x.dim() == 3, f"expected a modality [B, T, D] or [B, D], got {tuple(x.shape)}"
    return x, mask.reshape(B, -1).bool()


def concat_modalities(inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor],
                      names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate modalities ``names`` along features ([B, T, sum D]); vectors are repeated at every step.
    The mask is True where any of them is real. Sequences must share their length (time-aligned data)."""
    seqs = {m: as_sequence(inputs[m], mask[m]) for m in names}
    lengths = {m: x.shape[1] for m, (x, _) in seqs.items() if inputs[m].dim() == 3}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"MFM's shared/surrogate encoders read time-aligned modalities of equal length, got {lengths}")
    T = next(iter(lengths.values()), 1)
    xs, ms = [], []
    for m in names:
        x, mk = seqs[m]
        if x.shape[1] != T:  # a vector modality, repeated over time
            x, mk = x.expand(x.shape[0], T, x.shape[2]), mk.expand(mk.shape[0], T)
        xs.append(x)
        ms.append(mk)
    return torch.cat(xs, dim=2), torch.stack(ms, dim=0).any(0)  # (B, T, sum D), (B, T)


class CodeEncoder(nn.Module):
    """An encoder plugin, then a Linear layer to the code (the original: LSTM, last hidden state, Linear).

    With ``variational`` a second Linear gives the log-variance (the ``kl`` variant)."""

    def __init__(self, encoder: nn.Module, code_dim: int, variational: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.to_code = nn.Linear(encoder.output_dim, code_dim)
        self.to_logvar = nn.Linear(encoder.output_dim, code_dim) if variational else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, mask = as_sequence(x, mask)
        pooled, _ = self.encoder(x, mask)  # (B, H)
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


class LabelHead(nn.Module):
    """D: Linear, ReLU, Dropout, Linear (the original fy_to_y), or one Linear (``hidden=0``, the original M_D)."""

    def __init__(self, task: Task, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.task = task
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, task.output_dim))
        else:
            self.net = nn.Linear(in_dim, task.output_dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return shape_prediction(self.task, self.net(f))


def per_sample_mse(x_hat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """[B] mean squared error per sample over steps and features; with ``mask`` [B, T] only real steps count."""
    err = (x_hat - x).pow(2).float()  # (B, T, D)
    if mask is None:
        return err.reshape(err.shape[0], -1).mean(1)
    m = mask.unsqueeze(-1).to(err.dtype)
    return (err * m).sum((1, 2)) / (m.sum((1, 2)) * err.shape[2]).clamp_min(1.0)


def frozen_call(module: nn.Module, *args: Any) -> Any:
    """Call ``module`` with its parameters detached: gradients flow to the inputs, never to the module.

    Surrogate inference trains its encoders through the full model's decoders and head this way, so the
    surrogate losses cannot move the full model."""
    params = {k: v.detach() for k, v in module.named_parameters()}
    return torch.func.functional_call(module, params, args)
