"""Dense layers for the fast paths: oneDNN matmuls on the CPU, with their own backward.

On x86 CPUs PyTorch runs float32 ``F.linear``/``mm`` through MKL. On AMD processors MKL takes a generic code
path: on the 2-core AMD EPYC machine of docs/performance.md it reached about 30 GFLOPS at the shapes of MFM's
batched projections (640 x 300 x 512), where oneDNN, which PyTorch bundles and which dispatches on the instruction
set rather than the vendor, reached 65 to 150; its backward matmuls gained the same. :func:`linear` computes the
same product through oneDNN (``torch.ops.mkldnn._linear_pointwise``, the op ``torch.compile`` emits for CPU
linears) in forward and backward, in IEEE float32: results differ from ``F.linear`` only by summation order.

It falls back to ``F.linear`` where that op does not apply: other dtypes (the float64 equivalence tests), other
devices (CUDA uses cuBLAS), under autocast or ``torch.compile``, without oneDNN, or with ``MFM_BENCH_ONEDNN=0`` in
the environment. The reference paths never use it. Batched matmuls over many rows pay; per-step (B x H) matmuls
under autograd stay on ``addmm``, where the Python call overhead of a custom autograd function would cost more
than it saves. Loops that run with autograd off (the fast MFN's ``LSTMLoop``) call :func:`mm_nt` directly.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off for ``device_type`` inside a fast path's loop; nothing to turn off on a device without
    autocast (the meta device the tests use as a stand-in for an accelerator, whose values the host cannot read)."""
    try:
        return torch.autocast(device_type, enabled=False)
    except RuntimeError:  # "unsupported scalarType": this device has no autocast
        return contextlib.nullcontext()


#: how ``MFM_BENCH_ONEDNN`` may be written (any case, spaces around ignored); unset or empty means on
SWITCH = {**dict.fromkeys(("", "1", "true", "yes", "on"), True), **dict.fromkeys(("0", "false", "no", "off"), False)}


def onednn_requested(strict: bool = False) -> bool:
    """``MFM_BENCH_ONEDNN``: on unless set to 0, false, no or off. Another value counts as on, or with ``strict``
    (``mfm-bench run``, before any work) is an error naming the fix."""
    value = os.environ.get("MFM_BENCH_ONEDNN", "1")
    if strict and value.strip().lower() not in SWITCH:
        from .errors import MfmBenchError

        raise MfmBenchError(
            f"MFM_BENCH_ONEDNN={value!r} is not a switch: write 0, false, no or off to turn the oneDNN linear off "
            "(F.linear throughout), or 1, true, yes or on (the default), or unset it"
        )
    return SWITCH.get(value.strip().lower(), True)


def _find_op():
    if not onednn_requested() or not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):  # a build without the op
        return None


_OP = _find_op()


def _mm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """x @ w.T (+ b) through oneDNN; x (..., K), w (N, K), any strides."""
    return _OP(x, w, b, "none", [], "")


class _OneDNNLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return _mm(x, w, b)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _mm(grad, w.t())  # (..., N) @ (N, K)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            g2 = grad.reshape(-1, grad.shape[-1])  # (rows, N)
            if ctx.needs_input_grad[1]:
                gw = _mm(g2.t(), x.reshape(-1, x.shape[-1]).t())  # (N, rows) @ (rows, K)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                gb = g2.sum(0)
        return gx, gw, gb


def applies(x: torch.Tensor, w: torch.Tensor) -> bool:
    """True when :func:`linear` takes the oneDNN route for these operands."""
    return (
        _OP is not None
        and not torch.compiler.is_compiling()  # under torch.compile, inductor chooses the kernels
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and w.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def mm_nt(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w.T`` through oneDNN without autograd, for loops that have checked :func:`applies` once (a
    contiguous ``w`` saves oneDNN a reorder at every call)."""
    return _mm(x, w)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for 2-D operands without autograd (inside a backward), through oneDNN where it applies."""
    if applies(a, b):
        return _mm(a, b.t())
    return a @ b


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, w, b)``: x (..., K), w (N, K), b (N,) or None; through oneDNN where :func:`applies`."""
    if applies(x, w):
        return _OneDNNLinear.apply(x, w, b)
    return F.linear(x, w, b)
