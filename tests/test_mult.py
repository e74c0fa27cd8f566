"""``mult``: crossmodal attention on unaligned sequences of different lengths, masks, and the NaN guard."""

from __future__ import annotations

import math

import pytest
import torch

from baseline_helpers import build, error, fit, one_thread, predict, synthetic, trivial_error  # noqa: F401
from mfm_bench.config import ConfigError
from mfm_bench.contracts import TensorSplit
from mfm_bench.nn import safe_attention
from mfm_bench.registry import get_registry

DIMS = {"text": 6, "audio": 3, "visual": 4}
LENGTHS = {"text": 5, "audio": 11, "visual": 8}


def unaligned(B: int = 6, seed: int = 0):
    """Inputs of different lengths per modality, right-padded to random lengths (at least 1 real step)."""
    g = torch.Generator().manual_seed(seed)
    inputs, mask = {}, {}
    for m, d in DIMS.items():
        T = LENGTHS[m]
        n = torch.randint(1, T + 1, (B,), generator=g)
        mask[m] = torch.arange(T)[None, :] < n[:, None]  # (B, T)
        inputs[m] = torch.randn(B, T, d, generator=g) * mask[m].unsqueeze(-1)
    return inputs, mask


def small(dims=DIMS, **kw):
    torch.manual_seed(0)
    return get_registry().build("fusion", "mult", dims, **{"d_model": 8, "heads": 2, "layers": 1, **kw}).eval()


def test_unaligned_shapes_and_padding_is_ignored():
    fusion = small()
    inputs, mask = unaligned()
    out = fusion(inputs, mask)
    assert out.shape == (6, 3 * 2 * 8) == (6, fusion.output_dim)  # M (M - 1) d
    garbage = {m: x + 5 * torch.randn_like(x) * ~mask[m].unsqueeze(-1) for m, x in inputs.items()}
    torch.testing.assert_close(fusion(garbage, mask), out)  # values at padded steps change nothing


def test_fully_masked_key_sequence_gives_no_nan_and_adds_nothing():
    fusion = small().train()
    inputs, mask = unaligned()
    mask["audio"] = mask["audio"].clone()
    mask["audio"][:3] = False  # audio missing in the first three samples
    inputs["audio"] = inputs["audio"] * mask["audio"].unsqueeze(-1)
    out = fusion(inputs, mask)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters() if p.grad is not None)
    fusion.eval()
    with torch.no_grad():
        a = fusion(inputs, mask)
        b = fusion(dict(inputs, audio=torch.randn_like(inputs["audio"])), mask)
    torch.testing.assert_close(a[:3], b[:3])  # a missing source's content cannot leak in
    assert not torch.allclose(a[3:], b[3:])


def test_safe_attention_matches_the_softmax_formula_and_zeroes_keyless_rows():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 4, generator=g) for _ in range(3))
    key_mask = torch.tensor([[True, False, True], [False, False, False]])
    out = safe_attention(q, k, v, key_mask, heads=1, dropout=0.0)
    scores = (q[0] @ k[0].T) / math.sqrt(4)
    scores[:, 1] = float("-inf")
    torch.testing.assert_close(out[0], torch.softmax(scores, -1) @ v[0])
    assert torch.equal(out[1], torch.zeros(3, 4))


def test_one_modality_attends_to_itself():
    fusion = small({"text": 6})
    inputs, mask = unaligned()
    out = fusion({"text": inputs["text"]}, {"text": mask["text"]})
    assert out.shape == (6, 8) and torch.isfinite(out).all()


def test_config_errors():
    with pytest.raises(ConfigError, match="heads"):
        get_registry().build("fusion", "mult", DIMS, d_model=10, heads=4)
    with pytest.raises(ConfigError, match="kernel"):
        get_registry().build("fusion", "mult", DIMS, kernel=2)


def test_learns_on_unaligned_synthetic_factors():
    """synthetic-factors with audio stretched to twice as many steps and visual to three times: no alignment."""
    spec, train, valid, test = synthetic("regression", n_train=256, n_test=128)

    def stretch(s: TensorSplit) -> TensorSplit:
        inputs, mask = dict(s.inputs), dict(s.mask)
        for m, r in (("audio", 2), ("visual", 3)):
            inputs[m] = inputs[m].repeat_interleave(r, dim=1)  # (N, r T, D)
            mask[m] = mask[m].repeat_interleave(r, dim=1)
        return TensorSplit(inputs, mask, s.target, s.ids, s.factors)

    train, valid, test = stretch(train), stretch(valid), stretch(test)
    assert train.inputs["visual"].shape[1] == 3 * train.inputs["text"].shape[1]
    model = build("mult", spec)
    fit(model, train, valid, epochs=6)
    mae, trivial = error(spec, predict(model, test), test.target), trivial_error(spec, train, test)
    assert mae < 0.75 * trivial, f"unaligned MulT: test MAE {mae:.3f} vs predict-the-mean {trivial:.3f}"
