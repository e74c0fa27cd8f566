"""``impl: fast`` against ``impl: reference``: the same outputs and gradients in float64, for the MFN fusion, the
decoders and MFM (every variant, surrogate inference on and off), and checkpoints that load in either path."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.plugins.fusions import mfn_fast
from mfm_bench.plugins.models.mfm import VARIANTS
from mfm_bench.plugins.models.mfm_fast import FastSequenceDecoder
from mfm_bench.plugins.models.mfm_parts import SequenceDecoder
from mfm_bench.registry import get_registry

TOL = dict(rtol=1e-10, atol=1e-10)
DIMS = {"text": 6, "audio": 3, "visual": 4}


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


def assert_same_grads(a: torch.nn.Module, b: torch.nn.Module, **tol) -> None:
    ga, gb = grads(a), grads(b)
    assert set(ga) == set(gb) and ga
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], **(tol or TOL), msg=k)


def pair(kind: str, name: str, arg, params):
    """The same module built twice, reference and fast (``params(impl)``), with identical parameters (float64)."""
    reg = get_registry()
    torch.manual_seed(0)
    ref = reg.build(kind, name, arg, **params("reference")).double()
    fast = reg.build(kind, name, arg, **params("fast")).double()
    fast.load_state_dict(ref.state_dict())  # a checkpoint of one path loads in the other: same keys and shapes
    return ref, fast


def mfn_inputs(B=5, T=7, padded=True):
    g = torch.Generator().manual_seed(1)
    x = {m: torch.randn(B, T, d, generator=g, dtype=torch.float64) for m, d in DIMS.items()}
    mask = {m: torch.ones(B, T, dtype=torch.bool) for m in DIMS}
    if padded:  # left padding of different lengths, a step where only one modality is real, a missing modality,
        for i in range(B):
            mask["text"][i, :i] = False
            mask["audio"][i, : i + 1] = False
        mask["visual"][:, :3] = False
        mask["audio"][2] = False
        for m in mask:  # a step padded in every modality after real ones: the memory is kept there
            mask[m][4, 5] = False
    return x, mask


@pytest.mark.parametrize(
    "params",
    [
        dict(hidden={"text": 5, "default": 4}, memory=6),
        dict(hidden=3, memory=4, window=3, skip_padding=False),
        dict(hidden={"audio": 2, "default": 6}, memory=5, window=1),
    ],
)
@pytest.mark.parametrize("grouped", [True, False])
def test_mfn_fast_equals_reference(params, grouped: bool, monkeypatch) -> None:
    """Both layouts of the fast path's LSTMs: one grouped cell, and one cell per modality."""
    monkeypatch.setattr(mfn_fast, "GROUP_MAX_HIDDEN", 10**6 if grouped else 0)
    ref, fast = pair("fusion", "mfn", DIMS, lambda impl: {**params, "impl": impl})
    x, mask = mfn_inputs()
    outs = []
    for f in (ref, fast):
        xi = {m: v.clone().requires_grad_() for m, v in x.items()}
        out = f(xi, mask)
        (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum().backward()
        outs.append((out, {m: v.grad for m, v in xi.items()}))
    torch.testing.assert_close(outs[0][0], outs[1][0], **TOL)
    for m in DIMS:
        torch.testing.assert_close(outs[0][1][m], outs[1][1][m], **TOL)
    assert_same_grads(ref, fast)


def test_mfn_vector_modality_and_dropout_in_eval() -> None:
    dims = {"seq": 4, "vec": 3}
    ref, fast = pair(
        "fusion",
        "mfn",
        dims,
        lambda impl: dict(impl=impl, memory_dropout=0.3, gamma_dropout=0.2, attention_dropout=0.1),
    )
    ref.eval(), fast.eval()
    x = {"seq": torch.randn(3, 5, 4, dtype=torch.float64), "vec": torch.randn(3, 3, dtype=torch.float64)}
    mask = {"seq": torch.ones(3, 5, dtype=torch.bool), "vec": torch.tensor([[True], [False], [True]])}
    torch.testing.assert_close(ref(x, mask), fast(x, mask), **TOL)


@pytest.mark.parametrize(
    "drops",
    [
        dict(attention_dropout=1.0),
        dict(memory_dropout=1.0),
        dict(gamma_dropout=[0.0, 1.0]),
        dict(gamma_dropout=[1.0, 0.0], skip_padding=False),
    ],
)
def test_mfn_dropout_wiring_in_training(drops) -> None:
    """In training, a dropout of 1 zeroes its layer in both paths (deterministically), so the outputs and
    gradients agree only if each dropout acts where the reference applies it."""
    ref, fast = pair("fusion", "mfn", DIMS, lambda impl: dict(hidden=3, memory=4, impl=impl, **drops))
    x, mask = mfn_inputs()
    outs = [f(x, mask) for f in (ref.train(), fast.train())]
    for out in outs:
        (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum().backward()
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    assert_same_grads(ref, fast)
    ref.eval(), fast.eval()
    assert not torch.allclose(ref(x, mask), outs[0])  # the dropout did act in training


@pytest.mark.parametrize("steps", [1, 2, 9])
def test_decoder_fast_equals_reference(steps: int) -> None:
    torch.manual_seed(0)
    ref = SequenceDecoder(7, 5).double()
    fast = FastSequenceDecoder(7, 5).double()
    fast.load_state_dict(ref.state_dict())
    f = torch.randn(4, 7, dtype=torch.float64)
    outs = []
    for d in (ref, fast):
        fi = f.clone().requires_grad_()
        out = d(fi, steps)
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)).sum().backward()
        outs.append((out, fi.grad))
    assert outs[0][0].shape == (4, steps, 5)
    torch.testing.assert_close(outs[0][0], outs[1][0], **TOL)
    torch.testing.assert_close(outs[0][1], outs[1][1], **TOL)
    assert_same_grads(ref, fast)


TINY = dict(zy=6, za=4, fy=5, fa=3, encoder_params={"hidden": 6})


def mfm_batch(spec_dims=DIMS, n=10, T=6):
    ds = get_registry().build(
        "dataset", "synthetic-factors", n_train=n, n_valid=4, n_test=4, dims=spec_dims, seq_len=T, min_len=3
    )
    b = ds.split("train").batch(slice(None))
    inputs = {m: v.double() for m, v in b.inputs.items()}
    mask = {m: v.clone() for m, v in b.mask.items()}
    inputs["audio"][:3] = 0.0  # the evaluator's `missing: audio` on three rows
    mask["audio"][:3] = False
    out = b.replace(inputs=inputs, mask=mask, target=b.target.double())
    out.withheld = {"audio": (b.inputs["audio"].double(), b.mask["audio"])}
    return ds.spec, out


@pytest.mark.parametrize("surrogate", [False, True])
@pytest.mark.parametrize("variant", VARIANTS)
def test_mfm_fast_equals_reference(variant: str, surrogate: bool) -> None:
    spec, batch = mfm_batch()
    # the fast MFN draws its dropout masks in another order (equal in distribution): no dropout inside the fusion
    # here; test_mfn_dropout_wiring_in_training checks where its dropouts act
    fusion = {"hidden": 4, "memory": 4, "attention_hidden": 4, "memory_hidden": 4, "gamma_hidden": 4}
    fusion.update(attention_dropout=0.0, memory_dropout=0.0, gamma_dropout=0.0)
    ref, fast = pair(
        "model",
        "mfm",
        spec,
        lambda impl: dict(
            TINY, variant=variant, surrogate=surrogate, impl=impl, fusion_params={**fusion, "impl": impl}
        ),
    )
    results = []
    for model in (ref, fast):
        torch.manual_seed(3)  # the kl variant samples its codes in training
        out = model(batch)
        x_hat = model.decode(model.factorize(model.encode(batch)[0]), model.shapes(batch))
        # a float64 objective over the prediction and the reconstructions (the loss terms pass through float32)
        objective = out.prediction.sum() + sum((v * v).sum() for v in x_hat.values())
        objective.backward(retain_graph=True)
        g64 = grads(model)
        model.zero_grad()
        sum(out.losses.values()).backward()
        results.append((out, x_hat, g64))
    (a, xa, ga), (b, xb, gb) = results
    torch.testing.assert_close(a.prediction, b.prediction, **TOL)
    assert set(xa) == set(xb) and set(a.losses) == set(b.losses)
    for m in xa:
        torch.testing.assert_close(xa[m], xb[m], **TOL)
    for k in a.extras["codes"]:
        torch.testing.assert_close(a.extras["codes"][k], b.extras["codes"][k], **TOL)
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], **TOL, msg=k)
    for k in a.losses:  # float32 inside the MSE terms: agreement at float32 precision
        torch.testing.assert_close(a.losses[k], b.losses[k], rtol=1e-6, atol=1e-6, msg=k)
    assert_same_grads(ref, fast, rtol=1e-5, atol=1e-6)


def test_default_impl_is_fast() -> None:
    r = get_registry().resolve("model", "mfm", {})
    assert r["impl"] == "fast" and r["fusion_params"]["impl"] == "fast"


def test_the_paths_torch_compile_traces_give_the_same_model(monkeypatch) -> None:
    """Under ``torch.compile`` the fast path swaps in traceable code (the LSTM loop as plain operations, the
    decoders' cell loop, ``F.linear``): the same outputs and gradients, float64."""
    spec, batch = mfm_batch()
    fusion = {"hidden": 4, "memory": 4, "attention_hidden": 4, "memory_hidden": 4, "gamma_hidden": 4}
    fusion.update(attention_dropout=0.0, memory_dropout=0.0, gamma_dropout=0.0)
    _, fast = pair("model", "mfm", spec, lambda impl: dict(TINY, impl=impl, fusion_params={**fusion, "impl": impl}))
    fast.eval()
    results = []
    for compiling in (False, True):
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda c=compiling: c)
        fast.zero_grad()
        torch.manual_seed(3)  # the MMD draws its prior samples
        out = fast(batch)
        (out.prediction.sum() + sum(out.losses.values())).backward()
        results.append((out.prediction.detach().clone(), grads(fast)))
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    assert results[0][1].keys() == results[1][1].keys()
    for k in results[0][1]:
        torch.testing.assert_close(results[0][1][k], results[1][1][k], **TOL, msg=k)


def test_lstm_loop_through_onednn_equals_the_plain_products(monkeypatch) -> None:
    """Wide cells run their per-step products through oneDNN in float32 (the equivalence tests above run in
    float64, where they do not): the same states and gradients as addmm/mm, to float32 precision."""
    from mfm_bench import kernels
    from mfm_bench.plugins.fusions import lstm_loop

    monkeypatch.setenv("MFM_BENCH_ONEDNN", "on")  # whatever this CPU's default (off on Intel's)
    monkeypatch.setattr(kernels, "_OP", kernels._find_op())
    if kernels._OP is None:
        pytest.skip("this torch build has no oneDNN linear")
    g = torch.Generator().manual_seed(5)
    T, B, H = 6, 4, 8
    gx = torch.randn(T, B, 4 * H, generator=g)
    w = torch.randn(H, 4 * H, generator=g) * 0.3
    real = torch.rand(T, B, 1, generator=g) > 0.3
    weights = torch.randn(T, B, H, generator=g)
    results = []
    for least in (10**6, 1):  # plain products, then oneDNN for every width
        monkeypatch.setattr(lstm_loop, "ONEDNN_MIN_HIDDEN", least)
        for mask in (None, real):
            gi, wi = gx.clone().requires_grad_(), w.clone().requires_grad_()
            C, h = lstm_loop.LSTMLoop.apply(gi, wi, mask)
            ((C * weights).sum() + h.sum()).backward()
            results.append((C.detach(), h.detach(), gi.grad, wi.grad))
    for plain, onednn in zip(results[:2], results[2:]):
        for a, b in zip(plain, onednn):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
