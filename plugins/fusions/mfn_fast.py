"""The fast path of ``mfn`` (``impl: fast``): the same equations and parameters as ``MFNFusion``'s reference loop
(mfn.py), in fewer and larger operations.

- The input projections ``W_ih x[t] + b_ih + b_hh`` of every modality and every step: one matmul per modality,
  outside the time loop.
- The per-modality LSTM cells: one grouped cell per step. The recurrent weights form one block-diagonal matrix
  whose rows are ordered gate-major (input, forget, output gates of every modality, then every cell candidate),
  so one matmul, one sigmoid and one tanh update all modalities; the states are the modalities' states
  concatenated, which is what the attention reads.
- The memory-proposal MLP and the two gate MLPs: their first layers read [attended, memory] in one matmul (the
  proposal's weight padded with zero columns for the memory), their second layers are one block-diagonal matmul.

The fused weights are built from the module's own parameters at each call, so gradients reach the same
parameters, a checkpoint loads in either path, and ``torch.func.functional_call`` works. tests/test_mfm_speed.py
checks outputs and gradients against the reference in float64.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def gate_major_order(hidden: list[int]) -> torch.Tensor:
    """Row order taking block-diagonal LSTM rows (modality-major: i, f, g, o of each modality) to gate-major
    [i of all, f of all, o of all, g of all]: the sigmoid gates first, the tanh candidate last."""
    starts = [4 * sum(hidden[:k]) for k in range(len(hidden))]
    order = []
    for gate in (0, 1, 3, 2):  # PyTorch stores i, f, g, o
        for start, h in zip(starts, hidden):
            order.extend(range(start + gate * h, start + (gate + 1) * h))
    return torch.tensor(order)


def grouped_cell(fusion: Any) -> torch.Tensor:
    """The block-diagonal recurrent weight [4 S, S], rows gate-major (S = sum of hidden sizes)."""
    order = gate_major_order([fusion.hidden[m] for m in fusion.names])
    return torch.block_diag(*[fusion.cells[m].weight_hh for m in fusion.names])[order]  # (4S, S)


def input_gates(fusion: Any, xs: dict[str, torch.Tensor]) -> torch.Tensor:
    """W_ih x + b_ih + b_hh for every step of every modality, gate-major: (B, T, 4S)."""
    per_gate: list[list[torch.Tensor]] = [[], [], [], []]
    for m in fusion.names:
        cell = fusion.cells[m]
        gates = F.linear(xs[m], cell.weight_ih, cell.bias_ih + cell.bias_hh).chunk(4, dim=2)  # 4 x (B, T, H_m)
        for k, gate in enumerate((0, 1, 3, 2)):  # PyTorch stores i, f, g, o; gate-major is i, f, o, g
            per_gate[k].append(gates[gate])
    return torch.cat([g for gates in per_gate for g in gates], dim=2)


def memory_weights(fusion: Any) -> tuple[torch.Tensor, ...]:
    """Transposed once per call (no transpose node per step): att1's two layers; the first layers of att2, gamma1,
    gamma2 stacked (reading [attended, memory]); their second layers as one block-diagonal layer."""
    att1, att2, g1, g2 = fusion.att1, fusion.att2, fusion.gamma1, fusion.gamma2
    pad = att2[0].weight.new_zeros(att2[0].weight.shape[0], fusion.cfg.memory)  # att2 does not read the memory
    w1 = torch.cat([torch.cat([att2[0].weight, pad], dim=1), g1[0].weight, g2[0].weight], dim=0)
    b1 = torch.cat([att2[0].bias, g1[0].bias, g2[0].bias])
    w2 = torch.block_diag(att2[3].weight, g1[3].weight, g2[3].weight)
    b2 = torch.cat([att2[3].bias, g1[3].bias, g2[3].bias])
    return att1[0].weight.t(), att1[0].bias, att1[3].weight.t(), att1[3].bias, w1.t(), b1, w2.t(), b2


def step_masks(fusion: Any, ms: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per step: which state entries may move [B, S] and whether any modality is real [B, 1] (contiguous)."""
    real = torch.cat([ms[m].unsqueeze(-1).expand(*ms[m].shape, fusion.hidden[m]) for m in fusion.names], dim=2)
    any_real = torch.stack([ms[m] for m in fusion.names], dim=0).any(0).unsqueeze(-1)  # (B, T, 1)
    return list(real.transpose(0, 1).contiguous().unbind(0)), list(any_real.transpose(0, 1).contiguous().unbind(0))


def memory_update(fusion: Any, c_star: torch.Tensor, mem: torch.Tensor, weights: tuple) -> torch.Tensor:
    """The Delta-memory attention and the gated memory update of one step (equations in mfn.py). Splits, not
    slices: one backward node per split instead of a zero-filled gradient per slice."""
    a1, ab1, a2, ab2, w1, b1, w2, b2 = weights
    hidden = F.relu(torch.addmm(ab1, c_star, a1))
    if fusion.training and fusion.cfg.attention_dropout > 0:
        hidden = fusion.att1[2](hidden)
    attended = torch.softmax(torch.addmm(ab2, hidden, a2), dim=1) * c_star  # (B, W S)
    hidden = F.relu(torch.addmm(b1, torch.cat([attended, mem], dim=1), w1))  # (B, H2 + 2 Hg)
    if fusion.training and fusion.dropout_active:
        parts = hidden.split([fusion.cfg.memory_hidden, fusion.cfg.gate(0)[0], fusion.cfg.gate(1)[0]], dim=1)
        hidden = torch.cat([fusion.att2[2](parts[0]), fusion.gamma1[2](parts[1]), fusion.gamma2[2](parts[2])], dim=1)
    M = fusion.cfg.memory
    proposal, gates = torch.addmm(b2, hidden, w2).split([M, 2 * M], dim=1)  # (B, mem), (B, 2 mem)
    g1, g2 = torch.sigmoid(gates).chunk(2, dim=1)
    return g1 * mem + g2 * torch.tanh(proposal)


def fast_forward(fusion: Any, xs: dict[str, torch.Tensor], ms: dict[str, torch.Tensor], T: int) -> torch.Tensor:
    """MFN over prepared sequences xs {m: (B, T, D_m)}, masks ms {m: (B, T)}; returns (B, S + mem)."""
    w_hh = grouped_cell(fusion).t()  # (S, 4S)
    gates_in = input_gates(fusion, xs).transpose(0, 1).contiguous().unbind(0)  # T x (B, 4S), each contiguous
    weights = memory_weights(fusion)
    ref = gates_in[0]
    B, S = ref.shape[0], fusion.total_hidden
    h, c, mem = ref.new_zeros(B, S), ref.new_zeros(B, S), ref.new_zeros(B, fusion.cfg.memory)
    window = [ref.new_zeros(B, S) for _ in range(fusion.cfg.window - 1)]
    skip = fusion.cfg.skip_padding
    if skip:
        real, any_real = step_masks(fusion, ms)
    for t in range(T):
        sig, cand = torch.addmm(gates_in[t], h, w_hh).split([3 * S, S], dim=1)  # (B, 3S), (B, S)
        i, f, o = torch.sigmoid(sig).chunk(3, dim=1)
        c_new = f * c + i * torch.tanh(cand)
        h_new = o * torch.tanh(c_new)
        if skip:
            h, c = torch.where(real[t], h_new, h), torch.where(real[t], c_new, c)
        else:
            h, c = h_new, c_new
        mem_new = memory_update(fusion, torch.cat([*window, c], dim=1), mem, weights)
        mem = torch.where(any_real[t], mem_new, mem) if skip else mem_new
        if window:
            window = window[1:] + [c]
    return torch.cat([h, mem], dim=1)
