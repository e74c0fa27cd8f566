"""``mfn``: the Memory Fusion Network (Zadeh et al., AAAI 2018), the default discriminative encoder of MFM.

Per time step t, for modalities 1..M (equations of the paper, as in its public code):

- one LSTM cell per modality: ``h_m[t], c_m[t] = LSTMCell_m(x_m[t], (h_m[t-1], c_m[t-1]))``;
- Delta-memory attention over a window of ``window`` steps of cell states (2 in the paper:
  ``c*[t] = [c[t-1], c[t]]``, each the concatenation over modalities):
  ``a[t] = softmax(MLP_att1(c*[t]))`` with the softmax over the *dimensions* of c*, not over time;
  ``attended = a[t] * c*[t]``;
- proposed memory ``u[t] = tanh(MLP_att2(attended))``;
- multi-view gated memory: ``gamma1 = sigmoid(MLP_g1([attended, u_mem[t-1]]))``,
  ``gamma2 = sigmoid(MLP_g2([attended, u_mem[t-1]]))``, ``mem[t] = gamma1 * mem[t-1] + gamma2 * u[t]``.

The output is ``[h_1[T], ..., h_M[T], mem[T]]`` (the original passes it to an output MLP; here the model's
head or MFM's Linear to z_y plays that role). Every MLP is Linear, ReLU, Dropout, Linear.

Padding: with ``skip_padding`` (default) a step whose mask is False leaves that modality's state unchanged and
a step where no modality is real leaves the memory unchanged; for left-padded data this equals starting at the
first real step, and a missing modality (all False) keeps a zero state. The original code runs over the zero
padding instead (``skip_padding: false``). Vector modalities [B, D] are fed at every step.
"""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench.config import per_modality
from mfm_bench.nn import mlp

from .configs import MFNConfig  # noqa: F401 - the config lives torch-free in configs.py
from .mfn_fast import fast_forward


class MFNFusion(nn.Module):
    """Memory Fusion Network over raw modality sequences; returns [last h of every modality, last memory]."""

    input_kind = "raw"

    def __init__(self, input_dims: dict[str, int], cfg: MFNConfig) -> None:
        super().__init__()
        self.names = list(input_dims)
        self.cfg = cfg
        self.hidden = {m: int(per_modality(cfg.hidden, m, "hidden")) for m in self.names}
        self.cells = nn.ModuleDict({m: nn.LSTMCell(input_dims[m], self.hidden[m]) for m in self.names})
        total = sum(self.hidden.values())
        att_in = total * cfg.window
        self.att1 = mlp(att_in, cfg.attention_hidden, att_in, cfg.attention_dropout)
        self.att2 = mlp(att_in, cfg.memory_hidden, cfg.memory, cfg.memory_dropout)
        (h1, d1), (h2, d2) = cfg.gate(0), cfg.gate(1)
        self.gamma1 = mlp(att_in + cfg.memory, h1, cfg.memory, d1)
        self.gamma2 = mlp(att_in + cfg.memory, h2, cfg.memory, d2)
        self.total_hidden = total
        self.output_dim = total + cfg.memory
        self.dropout_active = any(p > 0 for p in (cfg.memory_dropout, cfg.gate(0)[1], cfg.gate(1)[1]))

    def _sequences(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]):
        seqs = {m: inputs[m] for m in self.names if inputs[m].dim() == 3}
        lengths = {m: x.shape[1] for m, x in seqs.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"mfn needs time-aligned sequences of equal length, got lengths {lengths}; "
                "align the dataset (e.g. word-level alignment) or use another fusion"
            )
        T = next(iter(lengths.values()), 1)
        xs, ms = {}, {}
        for m in self.names:
            x = inputs[m]
            B = x.shape[0]
            if x.dim() == 2:  # vector modality: the same features at every step
                present = mask[m].reshape(B, -1).any(1)  # (B,)
                xs[m] = x.unsqueeze(1).expand(B, T, x.shape[1])  # (B, T, D)
                ms[m] = present.unsqueeze(1).expand(B, T)  # (B, T)
            else:
                assert x.dim() == 3, f"mfn: modality {m!r} must be [B, T, D] or [B, D], got {tuple(x.shape)}"
                xs[m], ms[m] = x, mask[m].reshape(B, -1).bool()
        return xs, ms, T

    def forward(self, inputs: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        xs, ms, T = self._sequences(inputs, mask)
        if self.cfg.impl == "fast":
            return fast_forward(self, xs, ms, T)
        return self._reference_forward(xs, ms, T)

    def _reference_forward(self, xs: dict[str, torch.Tensor], ms: dict[str, torch.Tensor], T: int) -> torch.Tensor:
        ref = xs[self.names[0]]
        B = ref.shape[0]
        h = {m: ref.new_zeros(B, self.hidden[m]) for m in self.names}
        c = {m: ref.new_zeros(B, self.hidden[m]) for m in self.names}
        mem = ref.new_zeros(B, self.cfg.memory)
        # the window of concatenated cell states, oldest first; zeros before the first step
        window = [ref.new_zeros(B, self.total_hidden) for _ in range(self.cfg.window - 1)]
        skip = self.cfg.skip_padding
        for t in range(T):
            any_real = None
            for m in self.names:
                h_new, c_new = self.cells[m](xs[m][:, t], (h[m], c[m]))  # (B, H_m) each
                if skip:
                    real = ms[m][:, t].unsqueeze(1)  # (B, 1)
                    h_new, c_new = torch.where(real, h_new, h[m]), torch.where(real, c_new, c[m])
                    any_real = real if any_real is None else any_real | real
                h[m], c[m] = h_new, c_new
            c_now = torch.cat([c[m] for m in self.names], dim=1)  # (B, sum H)
            c_star = torch.cat([*window, c_now], dim=1)  # (B, window * sum H)
            attention = torch.softmax(self.att1(c_star), dim=1)  # over dimensions, as in the paper
            attended = attention * c_star
            proposal = torch.tanh(self.att2(attended))  # (B, mem)
            both = torch.cat([attended, mem], dim=1)
            g1, g2 = torch.sigmoid(self.gamma1(both)), torch.sigmoid(self.gamma2(both))
            mem_new = g1 * mem + g2 * proposal
            mem = torch.where(any_real, mem_new, mem) if skip else mem_new
            if window:
                # with skip_padding the cell states do not move at padded steps, so for left-padded data the
                # window at the first real step is [zeros, c[t]], as if the sequence started there
                window = window[1:] + [c_now]
        return torch.cat([h[m] for m in self.names] + [mem], dim=1)  # (B, sum H + mem)
