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
    """The fused vector (``head: true``) of a small MulT, so tests can read it before the output layer."""
    torch.manual_seed(0)
    out_dim = kw.pop("out_dim", 1)
    params = {"d_model": 8, "heads": 2, "layers": 1, "head": True, **kw}
    return get_registry().build("fusion", "mult", dims, context={"out_dim": out_dim}, **params).eval()


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


def test_causal_by_default_as_the_reference_attn_mask():
    """With the reference's default attn_mask every layer is causal: the sequence before pooling at steps <= t does
    not change when any modality's inputs after t change (equal lengths, kernel 1)."""
    dims, T, t = {"text": 6, "audio": 3}, 7, 3
    fusion = small(dims)
    g = torch.Generator().manual_seed(2)
    inputs = {m: torch.randn(4, T, d, generator=g) for m, d in dims.items()}
    mask = {m: torch.ones(4, T, dtype=torch.bool) for m in dims}
    later = {
        m: torch.cat([x[:, : t + 1], torch.randn(4, T - t - 1, x.shape[2], generator=g)], 1) for m, x in inputs.items()
    }
    with torch.no_grad():
        a, b = fusion.sequences(inputs, mask)[0], fusion.sequences(later, mask)[0]
    for m in dims:
        torch.testing.assert_close(a[m][:, : t + 1], b[m][:, : t + 1])
        assert not torch.allclose(a[m][:, t + 1 :], b[m][:, t + 1 :])
    both_ways = small(dims, causal=False)
    with torch.no_grad():
        a, b = both_ways.sequences(inputs, mask)[0], both_ways.sequences(later, mask)[0]
    assert not torch.allclose(a["text"][:, : t + 1], b["text"][:, : t + 1])  # the option restores full attention


def test_reference_layer_norm_and_output_layer():
    fusion = small(head=False, out_dim=3)
    layer = fusion.cross["audio->text"].layers[0]
    assert layer.norm_kv is None  # queries, keys and values share one LayerNorm, as the reference layer
    assert small(shared_norm=False).cross["audio->text"].layers[0].norm_kv is not None
    inputs, mask = unaligned()
    assert fusion.predicts and fusion(inputs, mask).shape == (6, 3) == (6, fusion.output_dim)
    assert isinstance(fusion.out_layer, torch.nn.Linear)


def test_future_mask_shifts_by_the_length_difference():
    from mfm_bench.nn import future_mask

    assert torch.equal(future_mask(3, 3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert torch.equal(future_mask(2, 4), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))


def test_one_modality_attends_to_itself():
    fusion = small({"text": 6})
    inputs, mask = unaligned()
    out = fusion({"text": inputs["text"]}, {"text": mask["text"]})
    assert out.shape == (6, 8) and torch.isfinite(out).all()


def test_config_errors():
    with pytest.raises(ConfigError, match="heads"):
        get_registry().build("fusion", "mult", DIMS, d_model=10, heads=4, context={"out_dim": 1})
    with pytest.raises(ConfigError, match="kernel"):
        get_registry().build("fusion", "mult", DIMS, kernel=2, context={"out_dim": 1})


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


def test_attention_dropout_follows_the_reference_by_source_modality():
    """The reference's crossmodal transformer with text keys uses attn_dropout 0.1 and those with audio or visual keys
    attn_dropout_a / attn_dropout_v 0.0; the self-attention stacks use 0.1 (main.py:30-35, models.py:67-79)."""
    fusion = small()

    def rates(module):
        return {layer.attn_dropout for layer in module.layers}

    for key, transformer in fusion.cross.items():
        source = key.split("->")[0]
        assert rates(transformer) == ({0.1} if source == "text" else {0.0}), key
    assert all(rates(stack) == {0.1} for stack in fusion.memory.values())
    earlier = small(attn_dropout=0.1)  # one number for every source: our earlier model
    assert all(rates(t) == {0.1} for t in earlier.cross.values())
    custom = small(attn_dropout={"audio": 0.3, "default": 0.05}, self_attn_dropout=0.2)
    assert rates(custom.cross["audio->visual"]) == {0.3} and rates(custom.cross["text->audio"]) == {0.05}
    assert all(rates(stack) == {0.2} for stack in custom.memory.values())
    with pytest.raises((ConfigError, ValueError), match="default"):
        small(attn_dropout={"text": 0.1})


def test_raw_text_is_dropped_out_before_projection_as_the_reference():
    """The reference applies embed_dropout (0.25) to the raw text before projecting it (models.py:96), and to no other
    raw modality: with every other dropout off, training-mode outputs vary only through the text input."""
    quiet = dict(dropout=0.0, relu_dropout=0.0, attn_dropout=0.0, self_attn_dropout=0.0, embed_dropout=0.0)
    inputs, mask = unaligned()

    def varies(fusion):
        fusion.train()
        torch.manual_seed(1)
        a = fusion(inputs, mask)
        torch.manual_seed(2)
        return not torch.allclose(a, fusion(inputs, mask))

    fusion = small(**quiet)
    assert {m: d.p for m, d in fusion.input_drop.items()} == {"text": 0.25, "audio": 0.0, "visual": 0.0}
    assert varies(fusion)
    assert not varies(small(**quiet, input_dropout=0.0))  # our earlier model
    assert not varies(small(dims={"audio": 3, "visual": 4}, **quiet))  # no text: no input dropout by default
