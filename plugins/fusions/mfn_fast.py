"""The fast path of ``mfn`` (``impl: fast``): the same equations and parameters as ``MFNFusion``'s reference loop
(mfn.py), reordered so that most of the work runs as a few large operations instead of many small ones per step.

The reordering rests on one property of the MFN: its LSTMs read only their own modality, never the memory, and
the attention (``att1``) and the memory proposal (``att2``) read only the cell states. Only the two gate MLPs
read the memory. So the forward pass runs in three phases:

1. **The LSTMs.** The input projections ``W_ih x[t] + b_ih + b_hh`` of every step are one matmul per modality
   outside the time loop; the loop itself is :class:`~.lstm_loop.LSTMLoop` (autograd off, a hand-written
   backward). Each step is one ``addmm`` per modality with its own ``W_hh`` or, for small total
   hidden sizes (``GROUP_MAX_HIDDEN``), one grouped cell: the modalities' ``W_hh`` as one block-diagonal matrix
   with rows gate-major, so one matmul, one sigmoid and one tanh update every modality. Rows are reordered to
   (input, forget, output, cell) so one sigmoid covers the three gates. Step 0 starts from the zero state, so it
   needs no recurrent matmul.
2. **Attention and proposal for every step at once**: the window of cell states ``c*[t]`` of all steps is built
   by shifting the stacked states, then ``att1``, the softmax, ``att2`` and the attended part of the gates' first
   layers are matmuls over all B x T rows, through :func:`mfm_bench.kernels.linear` (oneDNN on the CPU).
3. **The gated memory**, the only part that has to run step by step: per step, the memory part of the gates'
   first layers (``mem @ W``, a (B, memory) x (memory, gates) matmul), their second layers as one block-diagonal
   matmul, and the update, as one autograd function with a hand-written backward
   (:class:`~.gated_memory.GatedMemory`). Gate dropout masks are drawn for all steps at once.

The fused weights are built from the module's own parameters at each call, so gradients reach the same
parameters, a checkpoint loads in either path, and ``torch.func.functional_call`` works.
tests/plugins/test_mfm_speed.py checks outputs and gradients against the reference in float64.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mfm_bench.kernels import linear

from .gated_memory import gated_memory
from .lstm_loop import lstm_loop

# Up to this total hidden size the LSTMs of all modalities run as one grouped cell: one block-diagonal matmul per
# step, where per-operation overhead outweighs the arithmetic its zero blocks waste (the MFN baseline, 3 x 32: in
# one run on a loaded machine its fast/reference ratio fell from 1.73 to 1.42 with one cell per modality); above
# it, one cell per modality (MFM's MOSI setting, 128 + 32 + 128, where the block-diagonal product does 2.5 times
# the useful arithmetic and measured slower). On CUDA always grouped (kernel launches dominate).
GROUP_MAX_HIDDEN = 128


def ifog(w: torch.Tensor) -> torch.Tensor:
    """Rows of an LSTM weight or bias (PyTorch order i, f, g, o) reordered to i, f, o, g."""
    i, f, g, o = w.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def input_gates(cell: torch.nn.LSTMCell, x: torch.Tensor) -> torch.Tensor:
    """``W_ih x[t] + b_ih + b_hh`` of every step, rows i, f, o, g: (T, B, 4H); for a vector modality (the same
    features at every step, a stride-0 time axis) projected once and expanded."""
    w, b = ifog(cell.weight_ih), ifog(cell.bias_ih + cell.bias_hh)
    T = x.shape[1]
    if x.stride(1) == 0:
        g = linear(x[:, 0], w, b)
        return g.unsqueeze(0).expand(T, *g.shape)
    return linear(x.transpose(0, 1), w, b)  # (T, B, 4H)


def gate_major_order(hidden: list[int]) -> list[int]:
    """Row order taking modality-major rows (i, f, o, g of each modality) to gate-major (i of all, f of all, ...)."""
    starts = [4 * sum(hidden[:k]) for k in range(len(hidden))]
    return [s + gate * h + j for gate in range(4) for s, h in zip(starts, hidden) for j in range(h)]


def grouped_states(fusion: Any, xs: dict[str, torch.Tensor], ms: dict[str, torch.Tensor], skip: bool):
    """All modalities' LSTMs as one cell over the concatenated state: one block-diagonal matmul per step."""
    names = fusion.names
    order = torch.tensor(gate_major_order([fusion.hidden[m] for m in names]), device=xs[names[0]].device)
    # gate-major input gates: each modality's (T, B, 4 H_m) seen as (T, B, 4, H_m), joined along H; a copy where
    # index_select with ``order`` gathered column by column (0.2 ms forward, 0.1 ms backward, MFN baseline sizes)
    gx = torch.cat([input_gates(fusion.cells[m], xs[m]).unflatten(2, (4, fusion.hidden[m])) for m in names], dim=3)
    gx = gx.flatten(2)
    w_hh = torch.block_diag(*[ifog(fusion.cells[m].weight_hh) for m in names]).index_select(0, order).t()
    real = None
    if skip:
        per = [ms[m].t().unsqueeze(-1).expand(-1, -1, fusion.hidden[m]) for m in names]  # (T, B, H_m)
        real = torch.cat(per, dim=2)  # (T, B, S)
    return lstm_loop(gx, w_hh, real)  # (T, B, S), (B, S)


def separate_states(fusion: Any, xs: dict[str, torch.Tensor], ms: dict[str, torch.Tensor], skip: bool):
    """One cell per modality, each with its own recurrent matmul; states concatenated in modality order."""
    states, last = [], []
    for m in fusion.names:
        real = ms[m].t().unsqueeze(-1) if skip else None  # (T, B, 1)
        C, h = lstm_loop(input_gates(fusion.cells[m], xs[m]), ifog(fusion.cells[m].weight_hh).t(), real)
        states.append(C)
        last.append(h)
    return torch.cat(states, dim=2), torch.cat(last, dim=1)


def windows(C: torch.Tensor, window: int) -> torch.Tensor:
    """c*[t] = [c[t-window+1], ..., c[t]] for every t (zeros before step 0): (T, B, S) -> (T, B, window S)."""
    if window == 1:
        return C
    T, B, S = C.shape
    padded = torch.cat([C.new_zeros(window - 1, B, S), C], dim=0)  # (T + window - 1, B, S)
    return torch.cat([padded[k : k + T] for k in range(window)], dim=2)


def gate_dropout(fusion: Any, T: int, B: int, ref: torch.Tensor) -> torch.Tensor | None:
    """Inverted-dropout masks (T, B, gates' hidden) of the gates' hidden layers for every step (as ``nn.Dropout``;
    drawn as ``rand < keep``, see :func:`dropout`), or None."""
    (h1, d1), (h2, d2) = fusion.cfg.gate(0), fusion.cfg.gate(1)
    if not fusion.training or (d1 <= 0 and d2 <= 0):
        return None
    keep = torch.cat([ref.new_full((h1,), 1.0 - d1), ref.new_full((h2,), 1.0 - d2)])  # (Hg,)
    scale = torch.where(keep > 0, 1.0 / keep.clamp_min(1e-12), torch.zeros_like(keep))
    # uniform draws in float32 whatever the activations' dtype: a bf16 draw has 8 bits, which would bias the rate
    return (torch.rand(T, B, keep.shape[0], device=ref.device) < keep) * scale


def dropout(module: torch.nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, the same inverted dropout, with its mask drawn as ``rand < 1 - p``: ``bernoulli_`` took three
    times as long for the same masks on the CPU (0.17 ms against 0.05 ms for the attention's 640 x 32)."""
    p = module.p
    if not module.training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    # the uniform draws in float32 (as ``nn.Dropout``'s masks): under bf16 autocast a bf16 draw would bias the rate
    return x * ((torch.rand(x.shape, device=x.device) < 1.0 - p) * (1.0 / (1.0 - p)))


def attend(fusion: Any, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Phase 2, every step at once: the memory proposal (T, B, memory) and the attended part of the gates' first
    layers (T, B, Hg). att2's first layer and that part read the same attended states: one matmul."""
    T, B, _ = C.shape
    att1, att2, g1, g2 = fusion.att1, fusion.att2, fusion.gamma1, fusion.gamma2
    c_star = windows(C, fusion.cfg.window).flatten(0, 1)  # (T B, window S)
    width = c_star.shape[1]
    hidden = dropout(att1[2], F.relu(linear(c_star, att1[0].weight, att1[0].bias)))
    attended = torch.softmax(linear(hidden, att1[3].weight, att1[3].bias), dim=1) * c_star  # over dimensions
    w = torch.cat([att2[0].weight, g1[0].weight[:, :width], g2[0].weight[:, :width]], dim=0)
    b = torch.cat([att2[0].bias, g1[0].bias, g2[0].bias])
    h2, pre = linear(attended, w, b).split([att2[0].out_features, w.shape[0] - att2[0].out_features], dim=1)
    proposal = torch.tanh(linear(dropout(att2[2], F.relu(h2)), att2[3].weight, att2[3].bias))
    return proposal.view(T, B, -1), pre.reshape(T, B, -1)


def memory_states(fusion: Any, C: torch.Tensor, any_real: torch.Tensor | None) -> torch.Tensor:
    """Phase 3, step by step: the multi-view gated memory after the last step, from the cell states C (T, B, S)."""
    T, B, _ = C.shape
    g1, g2 = fusion.gamma1, fusion.gamma2
    proposal, pre = attend(fusion, C)
    width = g1[0].in_features - fusion.cfg.memory
    w_mem = torch.cat([g1[0].weight[:, width:], g2[0].weight[:, width:]], dim=0).t()  # (memory, Hg)
    w2 = torch.block_diag(g1[3].weight, g2[3].weight).t()  # (Hg, 2 memory)
    b2 = torch.cat([g1[3].bias, g2[3].bias])
    drop = gate_dropout(fusion, T, B, C)
    if not torch.compiler.is_compiling():  # one autograd node with a hand-written backward
        return gated_memory(pre, proposal, w_mem, w2, b2, drop, any_real)
    mem = None  # zero memory: step 0 needs no memory matmul (the loop torch.compile traces)
    for t, (pre_t, prop_t) in enumerate(zip(pre.unbind(0), proposal.unbind(0))):
        hidden = F.relu(pre_t if mem is None else torch.addmm(pre_t, mem, w_mem))
        if drop is not None:
            hidden = hidden * drop[t]
        gamma1, gamma2 = torch.sigmoid(torch.addmm(b2, hidden, w2)).chunk(2, dim=1)
        new = gamma2 * prop_t if mem is None else torch.addcmul(gamma1 * mem, gamma2, prop_t)
        if any_real is not None:
            mem = torch.where(any_real[t], new, mem if mem is not None else torch.zeros_like(new))
        else:
            mem = new
    return mem


def fast_forward(fusion: Any, xs: dict[str, torch.Tensor], ms: dict[str, torch.Tensor], T: int) -> torch.Tensor:
    """MFN over prepared sequences xs {m: (B, T, D_m)}, masks ms {m: (B, T)}; returns (B, S + mem)."""
    skip = fusion.cfg.skip_padding
    ref = xs[fusion.names[0]]
    grouped = ref.device.type == "cuda" or fusion.total_hidden <= GROUP_MAX_HIDDEN
    C, h = (grouped_states if grouped else separate_states)(fusion, xs, ms, skip)
    any_real = None
    if skip:
        any_real = torch.stack([ms[m] for m in fusion.names]).any(0).t().unsqueeze(-1)  # (T, B, 1)
    return torch.cat([h, memory_states(fusion, C, any_real)], dim=1)
