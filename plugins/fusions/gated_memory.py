"""The MFN's multi-view gated memory as one autograd function with a hand-written backward (``mfn_fast.py``).

Per step the memory update reads the previous memory through the gates' first layers, so it cannot be batched
over steps. Under autograd each step records about ten nodes; :class:`GatedMemory` runs the same equations with
autograd off, saves what the backward needs, and walks the steps in reverse with five operations per step; the
weight gradients are one matmul each over all steps. Equations, per step t, with ``pre[t]`` the attended part of
both gates' first layers (biases included) and ``prop[t]`` the memory proposal::

    z = pre[t] + mem @ w_mem          hidden = relu(z) * drop[t]
    s = sigmoid(hidden @ w2 + b2)     gamma1, gamma2 = s[:, :M], s[:, M:]
    mem = gamma1 * mem + gamma2 * prop[t]        (kept as it was where ``real[t]`` is False)

from the zero memory. tests/plugins/test_mfm_speed.py compares outputs and gradients with the reference MFN in
float64, with and without padding masks and gate dropout.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from mfm_bench.kernels import matmul, no_autocast


class GatedMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, prop, w_mem, w2, b2, drop, real):
        ctx.dtypes = [x.dtype for x in (pre, prop, w_mem, w2, b2)]
        # under autocast the activations arrive in bf16 or fp16 and the weights in float32: the recurrence runs in
        # the wider type (small tensors, and 20 multiplicative gate steps compound a bf16 rounding)
        dt = torch.promote_types(pre.dtype, w_mem.dtype)
        with no_autocast(pre.device.type):
            pre, prop, w_mem, w2, b2 = (x.to(dt) for x in (pre, prop, w_mem, w2, b2))
            T, B, _ = pre.shape
            M = prop.shape[2]
            Z, Hid = torch.empty_like(pre), torch.empty_like(pre)
            S = pre.new_empty(T, B, 2 * M)
            mems = pre.new_zeros(T + 1, B, M)  # the memory before each step, and after the last
            # every step's views made once
            pres, props, Zs, Hs, Ss = pre.unbind(0), prop.unbind(0), Z.unbind(0), Hid.unbind(0), S.unbind(0)
            g1, g2, mem = S[..., :M].unbind(0), S[..., M:].unbind(0), mems.unbind(0)
            drops = drop.unbind(0) if drop is not None else None
            reals = real.unbind(0) if real is not None else None
            for t in range(T):
                if t == 0:  # from the zero memory
                    Zs[0].copy_(pres[0])
                else:
                    torch.addmm(pres[t], mem[t], w_mem, out=Zs[t])
                torch.clamp_min(Zs[t], 0.0, out=Hs[t])
                if drops is not None:
                    Hs[t].mul_(drops[t])
                torch.addmm(b2, Hs[t], w2, out=Ss[t]).sigmoid_()
                if reals is None:
                    torch.mul(g1[t], mem[t], out=mem[t + 1]).addcmul_(g2[t], props[t])
                else:
                    torch.where(reals[t], torch.addcmul(g1[t] * mem[t], g2[t], props[t]), mem[t], out=mem[t + 1])
        ctx.save_for_backward(Z, Hid, S, mems, prop, w_mem, w2, drop, real)
        return mems[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dmem):
        Z, Hid, S, mems, prop, w_mem, w2, drop, real = ctx.saved_tensors
        T, B, Hg = Z.shape
        M = prop.shape[2]
        prev = mems[:-1]  # the memory before each step
        dm = dmem.to(Z.dtype)
        # every step's local derivatives at once: ds = [d, d] * P, dz = (ds @ w2^T) * R
        sd = S * (1 - S)
        P = torch.cat([prev, prop], dim=2) * sd  # (T, B, 2M): d s / d(pre-sigmoid) times what each gate multiplies
        R = (Z > 0).to(Z.dtype)
        if drop is not None:
            R.mul_(drop)
        masks = real.to(Z.dtype).unbind(0) if real is not None else None
        dS, dZ, dnew = torch.empty_like(S), torch.empty_like(Z), torch.empty_like(prop)
        w2_t, wm_t = w2.t(), w_mem.t()
        p_blocks, ds_blocks = P.view(T, B, 2, M).unbind(0), dS.view(T, B, 2, M).unbind(0)
        dSs, dZs, dnews, Rs, g1 = dS.unbind(0), dZ.unbind(0), dnew.unbind(0), R.unbind(0), S[..., :M].unbind(0)
        for t in range(T - 1, -1, -1):
            d = dm if masks is None else torch.mul(dm, masks[t], out=dnews[t])
            if masks is None:
                dnews[t].copy_(d)
            torch.mul(p_blocks[t], d.unsqueeze(1), out=ds_blocks[t])
            torch.mul(torch.mm(dSs[t], w2_t), Rs[t], out=dZs[t])
            if t > 0:  # the memory before step t: through gamma1 and through the gates' first layers
                dm_prev = torch.addmm(d * g1[t], dZs[t], wm_t)
                dm = dm_prev if masks is None else dm_prev.add_(dm).sub_(d)
        rows = T * B
        dprop = dnew * S[..., M:]
        dw_mem = matmul(prev[1:].reshape(-1, M).t(), dZ[1:].reshape(-1, Hg)) if T > 1 else torch.zeros_like(w_mem)
        dw2 = matmul(Hid.reshape(rows, Hg).t(), dS.reshape(rows, 2 * M))
        db2 = dS.reshape(rows, 2 * M).sum(0)
        grads = [dZ, dprop, dw_mem, dw2, db2]
        return (*(g.to(dt) for g, dt in zip(grads, ctx.dtypes)), None, None)


def gated_memory(pre, prop, w_mem, w2, b2, drop=None, real=None) -> torch.Tensor:
    """The memory after the last step, (B, M); ``drop`` (T, B, Hg) scaled dropout masks of the gates' hidden
    layers, ``real`` (T, B, 1) bool (False: the memory is kept at that step)."""
    return GatedMemory.apply(pre, prop, w_mem, w2, b2, drop, real)
