"""An LSTM time loop with a hand-written backward, for the fast MFN (``mfn_fast.py``).

The MFN's attention reads every step's cell state, which whole-sequence kernels (oneDNN, cuDNN) do not return, so
its LSTMs run as a loop over steps. Under autograd each step records a dozen nodes, and each step's backward
computes its own ``dW_hh`` product. :class:`LSTMLoop` runs the same equations with autograd off and saves the
gate activations; its backward walks the steps in reverse with a few fused elementwise products per step, then
computes ``dW_hh`` for all steps in one matmul over the stacked states (as cuDNN does). The arithmetic is the
LSTM's own; only the summation order of ``dW_hh`` differs. tests/plugins/test_mfm_speed.py checks outputs and
gradients against the reference MFN in float64, with and without padding masks.

Layout: input gates ``gx`` (T, B, 4H) already hold ``W_ih x[t] + b_ih + b_hh``, rows in the order input, forget,
output, cell (one sigmoid covers the first three); ``w_hh`` is (H, 4H), the transposed recurrent weight. With
``real`` (T, B, 1 or H), a False entry keeps its state from the previous step (skip_padding).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from mfm_bench.kernels import applies, matmul, mm_nt, no_autocast


class LSTMLoop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gx: torch.Tensor, w_hh: torch.Tensor, real: torch.Tensor | None):
        # under autocast the input gates arrive in the low-precision dtype: the loop runs in it, autocast off, and
        # the backward returns each gradient in its input's dtype
        ctx.w_dtype = w_hh.dtype
        with no_autocast(gx.device.type):
            return LSTMLoop._forward(ctx, gx, w_hh.to(gx.dtype), real)

    @staticmethod
    def _forward(ctx, gx: torch.Tensor, w_hh: torch.Tensor, real: torch.Tensor | None):
        T, B, H4 = gx.shape
        H = H4 // 4
        acts = torch.empty_like(gx)  # sigmoid(i, f, o), tanh(g) of every step
        C, TC, Hs = (gx.new_empty(T, B, H) for _ in range(3))  # c (after the mask), tanh(c_new), h (after)
        # every step's views made once (a view costs about a microsecond, a step a dozen of them)
        gxs, steps = gx.unbind(0), acts.unbind(0)
        sig, cand = acts[:, :, : 3 * H].unbind(0), acts[:, :, 3 * H :].unbind(0)
        i, f, o, g = (x.unbind(0) for x in acts.split(H, dim=2))
        Cs, TCs, Hss = C.unbind(0), TC.unbind(0), Hs.unbind(0)
        recurrent = _recurrent(w_hh)
        zero = gx.new_zeros(())
        for t in range(T):
            if t == 0:  # from the zero state: no recurrent product
                torch.sigmoid(gxs[0][:, : 3 * H], out=sig[0])
                torch.tanh(gxs[0][:, 3 * H :], out=cand[0])
            else:
                recurrent(gxs[t], Hss[t - 1], steps[t])
                sig[t].sigmoid_()
                cand[t].tanh_()
            if real is None:  # straight into the saved buffers
                if t == 0:
                    torch.mul(i[0], g[0], out=Cs[0])
                else:
                    torch.mul(f[t], Cs[t - 1], out=Cs[t]).addcmul_(i[t], g[t])
                torch.mul(o[t], torch.tanh(Cs[t], out=TCs[t]), out=Hss[t])
            else:
                c_new = i[t] * g[t] if t == 0 else torch.addcmul(f[t] * Cs[t - 1], i[t], g[t])
                h_new = o[t] * torch.tanh(c_new, out=TCs[t])
                torch.where(real[t], h_new, zero if t == 0 else Hss[t - 1], out=Hss[t])
                torch.where(real[t], c_new, zero if t == 0 else Cs[t - 1], out=Cs[t])
        ctx.save_for_backward(acts, C, TC, Hs, w_hh, real)
        return C, Hs[T - 1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dC: torch.Tensor | None, dh_last: torch.Tensor | None):
        acts, C, TC, Hs, w_hh, real = ctx.saved_tensors
        dC = dC.to(acts.dtype) if dC is not None else None
        dh_last = dh_last.to(acts.dtype) if dh_last is not None else None
        T, B, H4 = acts.shape
        H = H4 // 4
        dG = torch.empty_like(acts)  # gradients of the pre-activation gates, every step
        dh = dh_last if dh_last is not None else acts.new_zeros(B, H)
        dc = acts.new_zeros(B, H)
        back = _recurrent_back(w_hh)
        mask = real.to(acts.dtype).unbind(0) if real is not None else None
        # every step's local derivatives at once, so that a step of the loop below is a few fused products:
        # dG[t] = [dc, dc, dh, dc] * A[t] (gates i, f, o, g), and dc gains dh * through_h[t] (h = o * tanh(c))
        i, f, o, g = acts.split(H, dim=2)
        c_prev = torch.cat([torch.zeros_like(C[:1]), C[:-1]])  # c[-1] = 0: the forget gate of step 0 has no effect
        A = torch.empty_like(acts)
        a_i, a_f, a_o, a_g = A.split(H, dim=2)
        torch.mul(g, i * (1 - i), out=a_i)
        torch.mul(c_prev, f * (1 - f), out=a_f)
        torch.mul(TC, o * (1 - o), out=a_o)
        torch.mul(i, 1 - g * g, out=a_g)
        through_h = (o * (1 - TC * TC)).unbind(0)
        a_blocks, dg_blocks = A.view(T, B, 4, H).unbind(0), dG.view(T, B, 4, H).unbind(0)
        a_o, dg_o, f, dGs = a_o.unbind(0), dG[:, :, 2 * H : 3 * H].unbind(0), f.unbind(0), dG.unbind(0)
        dCs = dC.unbind(0) if dC is not None else None
        for t in range(T - 1, -1, -1):
            dc_out = dc + dCs[t] if dCs is not None else dc
            dh_new, dc_new = dh, dc_out
            if mask is not None:  # a kept state passes its gradient to the previous step
                dh_new, dc_new = dh * mask[t], dc_out * mask[t]
                keep_h, keep_c = dh - dh_new, dc_out - dc_new
            dc_new = torch.addcmul(dc_new, dh_new, through_h[t])
            torch.mul(a_blocks[t], dc_new.unsqueeze(1), out=dg_blocks[t])  # i, f and g
            torch.mul(a_o[t], dh_new, out=dg_o[t])  # o
            dc = dc_new * f[t]
            dh = back(dGs[t]) if t > 0 else dh
            if mask is not None:
                dc, dh = dc + keep_c, dh + keep_h
        dw = None
        if ctx.needs_input_grad[1]:
            dw = (
                matmul(Hs[:-1].reshape(-1, H).t(), dG[1:].reshape(-1, H4)) if T > 1 else w_hh.new_zeros(w_hh.shape)
            )  # (H, 4H): h[t-1]^T dG[t] summed over the steps (h[-1] = 0)
        dw = dw.to(ctx.w_dtype) if dw is not None else None
        return (dG if ctx.needs_input_grad[0] else None), dw, None


#: from this hidden size on, the per-step products go through oneDNN where it is on (``mfm_bench.kernels``: CPUs
#: not made by Intel): at batch 32 on the 2-core AMD EPYC of docs/performance.md, width 128 took 35 us against
#: 49 us (``addmm``) forward and 35 against 46 us (``mm``) backward, measured alone (inside a whole MFM step the
#: two measured equal within noise); at width 64 oneDNN's per-call cost made it slower (18 us against 12 and 14 us)
ONEDNN_MIN_HIDDEN = 128


def _recurrent(w_hh: torch.Tensor):
    """``step(gx_t, h, out)``: out = gx_t + h @ w_hh, through oneDNN for wide enough cells."""
    if w_hh.shape[0] >= ONEDNN_MIN_HIDDEN and applies(w_hh, w_hh):
        w = w_hh.t().contiguous()  # (4H, H): oneDNN's x @ w^T

        def step(gx_t, h, out):
            torch.add(gx_t, mm_nt(h, w), out=out)

        return step

    def plain(gx_t, h, out):
        torch.addmm(gx_t, h, w_hh, out=out)

    return plain


def _recurrent_back(w_hh: torch.Tensor):
    """``back(dg_t)``: dg_t @ w_hh^T, the gradient reaching h[t-1], through oneDNN for wide enough cells."""
    if w_hh.shape[0] >= ONEDNN_MIN_HIDDEN and applies(w_hh, w_hh):
        return lambda dg: mm_nt(dg, w_hh)
    w_t = w_hh.t()
    return lambda dg: torch.mm(dg, w_t)


def traced_loop(gx: torch.Tensor, w_hh: torch.Tensor, real: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """The same loop as plain autograd operations: what ``torch.compile`` traces (and captures, on CUDA)."""
    H = w_hh.shape[0]
    h = c = None
    states = []
    for t in range(gx.shape[0]):
        gates = gx[t] if h is None else torch.addmm(gx[t], h, w_hh)
        sig, cand = gates.split([3 * H, H], dim=1)
        i, f, o = torch.sigmoid(sig).chunk(3, dim=1)
        c_new = i * torch.tanh(cand) if c is None else torch.addcmul(f * c, i, torch.tanh(cand))
        h_new = o * torch.tanh(c_new)
        if real is not None:
            h_new = torch.where(real[t], h_new, 0.0 if h is None else h)
            c_new = torch.where(real[t], c_new, 0.0 if c is None else c)
        h, c = h_new, c_new
        states.append(c)
    return torch.stack(states), h


def lstm_loop(
    gx: torch.Tensor, w_hh: torch.Tensor, real: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell states of every step (T, B, H) and the last hidden state (B, H); see the module docstring. Under
    ``torch.compile`` the loop is traced as plain operations (:func:`traced_loop`)."""
    if torch.compiler.is_compiling():
        return traced_loop(gx, w_hh, real)
    return LSTMLoop.apply(gx, w_hh, real)
