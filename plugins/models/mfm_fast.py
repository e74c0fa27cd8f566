"""The fast path of MFM's decoders (``impl: fast``): the same math and parameters as ``SequenceDecoder``.

The decoder G_i is an LSTM cell fed the factors F at step 0 and its own hidden state afterwards. From step 1 on
the input is h[t-1], so the gates are ``W_ih h + b_ih + W_hh h + b_hh = (W_ih + W_hh) h + b_ih + b_hh``: an LSTM
with zero input whose recurrent weight is ``W_ih + W_hh``. Step 0 runs through the cell, steps 1..T-1 through one
whole-sequence LSTM call (oneDNN on CPU, cuDNN on CUDA) instead of T-1 cell calls from Python. The output layer
runs over all steps at once through :func:`mfm_bench.kernels.linear` (oneDNN on the CPU).
"""

from __future__ import annotations

import torch

from mfm_bench.kernels import linear

from .mfm_parts import SequenceDecoder


def unrolled_states(cell: torch.nn.LSTMCell, f: torch.Tensor, steps: int, train: bool) -> torch.Tensor:
    """Hidden states (B, steps, H) of ``cell`` fed ``f`` at step 0 and its own hidden state afterwards."""
    h, c = cell(f)  # zero initial state: (B, H) each
    if steps == 1:
        return h.unsqueeze(1)
    B, H = h.shape
    zero_in = h.new_zeros(B, steps - 1, 1)  # the input is folded into the recurrent weight
    w_ih = h.new_zeros(4 * H, 1)
    params = [w_ih, cell.weight_ih + cell.weight_hh, cell.bias_ih, cell.bias_hh]
    rest, _, _ = torch._VF.lstm(zero_in, (h.unsqueeze(0), c.unsqueeze(0)), params, True, 1, 0.0, train, False, True)
    return torch.cat([h.unsqueeze(1), rest], dim=1)  # (B, steps, H)


class FastSequenceDecoder(SequenceDecoder):
    """``SequenceDecoder`` with steps 1..T-1 in one whole-sequence LSTM call; same parameters and outputs."""

    def forward(self, f: torch.Tensor, steps: int) -> torch.Tensor:
        if torch.compiler.is_compiling():  # inductor cannot lower this LSTM call: compile traces the cell loop
            return super().forward(f, steps)
        states = unrolled_states(self.cell, f, steps, self.training)  # (B, steps, H)
        return linear(states, self.out.weight, self.out.bias)  # (B, steps, D)
