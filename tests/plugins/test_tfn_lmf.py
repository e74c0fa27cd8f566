"""``tfn`` and ``lmf``: the outer product with appended ones, its low-rank equivalent, and missing modalities."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import one_thread  # noqa: F401
from torch import nn

from mfm_bench.config import ConfigError
from mfm_bench.registry import get_registry

DIMS = {"a": 3, "b": 2, "c": 4}


def pooled(B: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(B, d, generator=g) for m, d in DIMS.items()}
    mask = {m: torch.ones(B, 7, dtype=torch.bool) for m in DIMS}
    return inputs, mask


def test_tfn_tensor_is_the_outer_product_of_vectors_padded_with_one():
    fusion = (
        get_registry()
        .build("fusion", "tfn", {"a": 3, "b": 2}, proj_dim=0, context={"out_dim": 1}, output_range=[])
        .eval()
    )
    fusion.net = nn.Identity()  # expose the flattened tensor (no squash after it)
    inputs, mask = pooled()
    out = fusion({m: inputs[m] for m in "ab"}, {m: mask[m] for m in "ab"})  # (B, 4 * 3)
    one = torch.ones(5, 1)
    za, zb = torch.cat([inputs["a"], one], 1), torch.cat([inputs["b"], one], 1)
    assert out.shape == (5, 12)
    torch.testing.assert_close(out, torch.einsum("bi,bj->bij", za, zb).flatten(1))
    # The unimodal terms survive: the last column of the (a, b) grid is z_a, the last row z_b, the corner 1.
    grid = out.view(5, 4, 3)
    torch.testing.assert_close(grid[:, :3, -1], inputs["a"])
    torch.testing.assert_close(grid[:, -1, :2], inputs["b"])


def test_tfn_missing_modality_keeps_the_others_terms_and_ignores_its_content():
    fusion = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1}).eval()
    inputs, mask = pooled()
    mask["b"] = mask["b"].clone()
    mask["b"][1] = False  # sample 1 has no "b"
    out = fusion(inputs, mask)
    other = dict(inputs, b=inputs["b"] + 10 * torch.randn_like(inputs["b"]))
    out2 = fusion(other, mask)
    torch.testing.assert_close(out[1], out2[1])  # b's content is ignored where b is missing
    assert not torch.allclose(out[0], out2[0])  # and read where it is present
    assert out.shape == (5, fusion.output_dim)


def test_tfn_refuses_a_tensor_too_large():
    with pytest.raises(ValueError, match="lmf"):
        get_registry().build("fusion", "tfn", DIMS, proj_dim=64, max_tensor=10_000, context={"out_dim": 1})
    with pytest.raises(ConfigError, match="proj_dim"):
        get_registry().build("fusion", "tfn", DIMS, proj_dim="big", context={"out_dim": 1})


def test_lmf_equals_tfn_linear_layer_with_the_rank_r_tensor():
    """LMF's output (the prediction itself, as the reference) is W · (z_a;1)⊗(z_b;1)⊗(z_c;1) + bias with W = Σ_r λ_r
    W_a^r ⊗ W_b^r ⊗ W_c^r, built here in full."""
    torch.manual_seed(0)
    fusion = get_registry().build("fusion", "lmf", DIMS, rank=3, context={"out_dim": 6}).eval()
    inputs, mask = pooled()
    out = fusion(inputs, mask)
    f, lam = fusion.factors, fusion.rank_weights[0]  # f[m]: (r, d_m + 1, h)
    W = torch.einsum("r,rih,rjh,rkh->ijkh", lam, f["a"], f["b"], f["c"])  # (4, 3, 5, h): the full weight tensor
    one = torch.ones(5, 1)
    z = {m: torch.cat([inputs[m], one], 1) for m in DIMS}
    tensor = torch.einsum("bi,bj,bk->bijk", z["a"], z["b"], z["c"])  # TFN's fused tensor
    expected = torch.einsum("bijk,ijkh->bh", tensor, W) + fusion.bias
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_lmf_missing_modality_ignores_its_content():
    fusion = get_registry().build("fusion", "lmf", DIMS, context={"out_dim": 1}).eval()
    inputs, mask = pooled()
    mask["c"] = torch.zeros_like(mask["c"])
    out = fusion(inputs, mask)
    out2 = fusion(dict(inputs, c=torch.randn_like(inputs["c"])), mask)
    torch.testing.assert_close(out, out2)
    assert torch.isfinite(out).all() and out.shape == (5, fusion.output_dim)


def test_tfn_squashes_a_regression_into_minus_three_three_like_the_reference():
    """The reference ends in sigmoid(.) * 6 - 3: even extreme inputs give predictions inside [-3, 3]."""
    from mfm_bench.contracts import Task

    torch.manual_seed(0)
    fusion = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1}).eval()
    assert fusion.range is None  # output_range: task, and no task known yet
    fusion.set_task(Task("regression", range=(-3.0, 3.0)))
    inputs, mask = pooled(B=64)
    with torch.no_grad():
        out = fusion({m: 1e4 * x for m, x in inputs.items()}, mask)
        raw = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1}, output_range=[]).eval()
        raw.load_state_dict(fusion.state_dict())
        unsquashed = raw({m: 1e4 * x for m, x in inputs.items()}, mask)
    assert out.shape == (64, 1) and out.min() >= -3.0 and out.max() <= 3.0
    assert unsquashed.abs().max() > 3.0  # without the squash the same weights leave the range
    torch.testing.assert_close(out, torch.sigmoid(unsquashed) * 6 - 3)
    logits = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 3}).eval()  # classification: no squash
    logits.set_task(Task("classification", n_classes=3))
    assert logits.range is None
    mmmo = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1})
    mmmo.set_task(Task("regression", range=(1.0, 5.0)))  # another regression range: squashed into that range
    fixed = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1}, output_range=[-3.0, 3.0])
    fixed.set_task(Task("regression", range=(1.0, 5.0)))  # a fixed range wins
    assert mmmo.range == (1.0, 5.0) and fixed.range == (-3.0, 3.0)


def test_tfn_and_lmf_predict_directly_without_an_mlp_head():
    """As the references, the fusion's last layer is the prediction: the supervised model adds no head, and LMF's
    prediction is the low-rank product itself (no parameters besides the factors, the rank weights and the bias)."""
    from mfm_bench.contracts import DatasetSpec, Modality, Task

    spec = DatasetSpec(
        name="toy",
        modalities=tuple(Modality(m, d) for m, d in DIMS.items()),
        task=Task("regression", range=(-3.0, 3.0)),
    )
    lmf = get_registry().build("model", "supervised", spec, fusion="lmf", encoder="mean")
    assert lmf.head is None and lmf.fusion.output_dim == 1
    assert sorted(n.split(".")[0] for n, _ in lmf.named_parameters() if not n.startswith("encoders")) == ["fusion"] * 5
    assert {n.split(".")[0] for n, _ in lmf.fusion.named_parameters()} == {"factors", "rank_weights", "bias"}
    tfn = get_registry().build("model", "supervised", spec, fusion="tfn", encoder="mean")
    assert tfn.head is None and tfn.fusion.range == (-3.0, 3.0)  # the supervised model gives TFN the task's range
    earlier = get_registry().build(
        "model", "supervised", spec, fusion="lmf", encoder="mean", fusion_params={"head": True}
    )
    assert earlier.head is not None and earlier.fusion.output_dim == 32  # the option restores the MLP head


def test_tfn_post_fusion_defaults_are_the_reference_train_py():
    """The reference builds TFN(input_dims, (4, 16, 128), 64, (0.3, 0.3, 0.3, 0.3), 32) (train.py:82):
    post_fusion_prob 0.3 on the flattened tensor and post_fusion_dim 32 for both fully connected layers."""
    fusion = get_registry().build("fusion", "tfn", DIMS, context={"out_dim": 1})
    drops = [m.p for m in fusion.net if isinstance(m, nn.Dropout)]
    linears = [m for m in fusion.net if isinstance(m, nn.Linear)]
    assert drops[0] == 0.3 and all(p == 0.0 for p in drops[1:])
    assert [m.out_features for m in linears] == [32, 32, 1]
