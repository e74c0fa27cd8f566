"""mfm_bench.kernels.linear: the product and all three gradients of F.linear, in float32, through oneDNN where it
applies, and F.linear itself where it does not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mfm_bench import kernels


@pytest.fixture(autouse=True)
def onednn_on(monkeypatch):
    """The oneDNN route on, as MFM_BENCH_ONEDNN=on would have it at import, whatever this CPU's default (off on
    Intel's): these tests are of the route itself."""
    monkeypatch.setenv("MFM_BENCH_ONEDNN", "on")
    monkeypatch.setattr(kernels, "_OP", kernels._find_op())


def operands(shape, dtype=torch.float32, transposed=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, 12, generator=g, dtype=dtype)
    if transposed:  # a (T, B, D) view of (B, T, D) data, as the fast MFN reads its inputs
        x = x.transpose(0, 1)
    w = torch.randn(7, 12, generator=g, dtype=dtype)
    b = torch.randn(7, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, w, b)]


def run(fn, x, w, b):
    out = fn(x, w, b)
    (out * torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape).sin()).sum().backward()
    grads = [t.grad.clone() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    return out.detach(), grads


@pytest.mark.parametrize("shape,transposed", [((9,), False), ((4, 5), False), ((4, 5), True)])
def test_linear_matches_f_linear(shape, transposed) -> None:
    x, w, b = operands(shape, transposed=transposed)
    want, want_grads = run(F.linear, x, w, b)
    got, got_grads = run(kernels.linear, x, w, b)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for g, h in zip(got_grads, want_grads):
        torch.testing.assert_close(g, h, rtol=1e-5, atol=1e-5)


def test_without_bias_and_without_input_grad() -> None:
    x, w, _ = operands((6,))
    x = x.detach()
    out = kernels.linear(x, w)
    out.sum().backward()
    torch.testing.assert_close(out, F.linear(x, w), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.grad, torch.ones(6, 7).t() @ x, rtol=1e-5, atol=1e-5)


def test_routes() -> None:
    x, w, _ = operands((3,))
    assert not kernels.applies(x.double(), w.double())  # float64 (the equivalence tests) takes F.linear
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels.applies(x, w)  # autocast decides the dtype: F.linear
    if torch.backends.mkldnn.is_available():
        assert kernels.applies(x, w)
        assert kernels.linear(x, w).grad_fn.name().endswith("_OneDNNLinearBackward")


@pytest.mark.parametrize(
    ("value", "vendor", "want"),
    [
        ("", "AuthenticAMD", (True, "auto: AuthenticAMD")),  # MKL's generic path: oneDNN measured 2-4x faster
        ("auto", "GenuineIntel", (False, "auto: GenuineIntel")),  # MKL's own path: measured faster than oneDNN
        (None, None, (False, "auto: CPU vendor unknown")),  # not measured: F.linear, as the reference path
        ("on", "GenuineIntel", (True, "MFM_BENCH_ONEDNN")),
        (" OFF ", "AuthenticAMD", (False, "MFM_BENCH_ONEDNN")),
    ],
)
def test_the_default_follows_the_cpu_vendor(monkeypatch, value, vendor, want) -> None:
    if value is None:
        monkeypatch.delenv("MFM_BENCH_ONEDNN", raising=False)
    else:
        monkeypatch.setenv("MFM_BENCH_ONEDNN", value)
    monkeypatch.setattr(kernels, "cpuinfo_field", lambda key: vendor if key == "vendor_id" else None)
    assert kernels.onednn_choice(strict=True) == want
