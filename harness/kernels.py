"""Dense layers for the fast paths: oneDNN matmuls on the CPU, with their own backward.

On x86 CPUs PyTorch runs float32 ``F.linear``/``mm`` through MKL. On AMD processors MKL takes a generic code
path: on the 2-core AMD EPYC machine of docs/performance.md it reached about 30 GFLOPS at the shapes of MFM's
batched projections (640 x 300 x 512), where oneDNN, which PyTorch bundles and which dispatches on the instruction
set rather than the vendor, reached 65 to 150; its backward matmuls gained the same. On Intel processors MKL takes
its own fast path: on a 2-core Intel Xeon (AVX-512) MKL reached 212 GFLOPS at 640 x 300 x 512 and oneDNN 199, and at
per-step sizes (32 x 128 x 512) 155 against 105, oneDNN paying more per call; MFM's fast path trained 20% faster
there with oneDNN off. :func:`linear` computes the same product through oneDNN (``torch.ops.mkldnn._linear_pointwise``,
the op ``torch.compile`` emits for CPU linears) in forward and backward, in IEEE float32: results differ from
``F.linear`` only by summation order.

``MFM_BENCH_ONEDNN`` chooses: unset, empty or ``auto`` (the default) turns oneDNN on for x86 CPUs not made by Intel
(``vendor_id`` in /proc/cpuinfo other than ``GenuineIntel``: MKL's generic path) and off for Intel's and for CPUs
this project has not measured (no /proc/cpuinfo, other architectures); ``1``/``on`` and ``0``/``off`` force it.
It falls back to ``F.linear`` where that op does not apply: other dtypes (the float64 equivalence tests), other
devices (CUDA uses cuBLAS), under autocast or ``torch.compile``, or without oneDNN. The reference paths never use
it. Batched matmuls over many rows pay; per-step (B x H) matmuls under autograd stay on ``addmm``, where the Python
call overhead of a custom autograd function would cost more than it saves. Loops that run with autograd off (the
fast MFN's ``LSTMLoop``) call :func:`mm_nt` directly.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .provenance import cpuinfo_field


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast off for ``device_type`` inside a fast path's loop; nothing to turn off on a device without
    autocast (the meta device the tests use as a stand-in for an accelerator, whose values the host cannot read)."""
    try:
        return torch.autocast(device_type, enabled=False)
    except RuntimeError:  # "unsupported scalarType": this device has no autocast
        return contextlib.nullcontext()


#: how ``MFM_BENCH_ONEDNN`` may be written (any case, spaces around ignored); unset or empty means auto
SWITCH = {
    **dict.fromkeys(("", "auto"), None),
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}


def onednn_choice(strict: bool = False) -> tuple[bool, str]:
    """(on, why) for ``MFM_BENCH_ONEDNN``: forced by ``1``/``on`` or ``0``/``off``, else chosen by the CPU's vendor
    (on for x86 CPUs not made by Intel, where MKL takes a generic path). Another value counts as auto, or with
    ``strict`` (``mfm-bench run``, before any work) is an error naming the fix."""
    value = os.environ.get("MFM_BENCH_ONEDNN", "")
    key = value.strip().lower()
    if strict and key not in SWITCH:
        from .errors import MfmBenchError

        raise MfmBenchError(
            f"MFM_BENCH_ONEDNN={value!r} is not a switch: write 0, false, no or off to turn the oneDNN linear off "
            "(F.linear throughout), 1, true, yes or on to force it on, or auto (the default, also unset or empty: "
            "on for x86 CPUs not made by Intel)"
        )
    forced = SWITCH.get(key)
    if forced is not None:
        return forced, "MFM_BENCH_ONEDNN"
    vendor = cpuinfo_field("vendor_id")
    if vendor is None:
        return False, "auto: CPU vendor unknown"
    return vendor != "GenuineIntel", f"auto: {vendor}"


def onednn_requested(strict: bool = False) -> bool:
    """Whether the oneDNN linear is asked for (:func:`onednn_choice`)."""
    return onednn_choice(strict)[0]


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
