"""``mctn``: losses, source-only prediction, unaligned translation, configuration errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from baseline_helpers import build, one_thread, synthetic  # noqa: F401

from mfm_bench.contracts import Modality
from mfm_bench.registry import get_registry


@pytest.fixture(scope="module")
def data():
    return synthetic("regression", n_train=64, n_test=32)


def test_losses_and_weights(data):
    spec, train, _, _ = data
    batch = train.batch(slice(0, 16))
    torch.manual_seed(0)
    out = build("mctn", spec)(batch)
    assert set(out.losses) == {"label", "translation", "cycle", "l2"}  # l2: the reference's output regulariser
    assert all(v > 0 for v in out.losses.values())
    assert out.extras["codes"]["joint"].shape == (16, 32)
    torch.manual_seed(0)
    off = build("mctn", spec, translation_weight=0.0, cycle_weight=0.0)(batch)
    assert off.losses["translation"].item() == 0.0 and off.losses["cycle"].item() == 0.0
    torch.testing.assert_close(off.losses["label"], out.losses["label"])


def test_reference_encoder_reads_both_ways_and_predictor_pools_by_attention(data):
    """As hainow/MCTN: a bidirectional encoder (changing the last step changes the first step's state), attention
    pooling over the predictor's steps, an L2 penalty of 0.01 on the output layer, translation/cycle weights 0.1."""
    spec, train, _, _ = data
    torch.manual_seed(0)
    model = build("mctn", spec).eval()
    batch = train.batch(slice(0, 8))
    x = torch.randn(8, 6, 32)
    mask = torch.ones(8, 6, dtype=torch.bool)
    later = torch.cat([x[:, :-1], torch.randn(8, 1, 32)], 1)  # only the last step differs
    with torch.no_grad():
        a, _ = model.encode(0, x, mask)
        b, _ = model.encode(0, later, mask)
        out = model(batch)
    assert not torch.allclose(a[:, 0], b[:, 0])
    one_way = build("mctn", spec, bidirectional=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(one_way.encode(0, x, mask)[0][:, 0], one_way.encode(0, later, mask)[0][:, 0])
    assert model.score is not None and build("mctn", spec, pooling="last").score is None
    w = model.output_layer().weight
    torch.testing.assert_close(out.losses["l2"], 0.01 * w.pow(2).sum())
    assert (model.cfg.translation_weight, model.cfg.cycle_weight) == (0.1, 0.1)


def test_prediction_reads_only_the_source(data):
    spec, train, _, _ = data
    model = build("mctn", spec, source="audio").eval()
    assert model.source == "audio" and model.targets == ["text", "visual"]
    batch = train.batch(slice(0, 16))
    with torch.no_grad():
        base = model(batch).prediction
        gone = model(
            batch.replace(
                inputs={m: (x if m == "audio" else torch.zeros_like(x)) for m, x in batch.inputs.items()},
                mask={m: (k if m == "audio" else torch.zeros_like(k)) for m, k in batch.mask.items()},
            )
        )
        noisy = model(
            batch.replace(inputs={m: (x if m == "audio" else x + torch.randn_like(x)) for m, x in batch.inputs.items()})
        )
        moved = model(batch.replace(inputs=dict(batch.inputs, audio=batch.inputs["audio"] + 1.0)))
    torch.testing.assert_close(gone.prediction, base)
    torch.testing.assert_close(noisy.prediction, base)
    assert torch.isfinite(gone.losses["translation"]) and torch.isfinite(gone.losses["cycle"])
    assert not torch.allclose(moved.prediction, base)


def test_translation_between_sequences_of_different_lengths(data):
    spec, train, _, _ = data
    batch = train.batch(slice(0, 32))
    long_visual = batch.inputs["visual"].repeat_interleave(2, dim=1)  # (B, 2 T, D)
    batch = batch.replace(
        inputs=dict(batch.inputs, visual=long_visual),
        mask=dict(batch.mask, visual=batch.mask["visual"].repeat_interleave(2, dim=1)),
    )
    torch.manual_seed(0)
    model = build("mctn", spec, targets=["visual"], label_weight=0.0)
    decoder = model.decoders[0]
    first = model(batch).losses["translation"].item()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = sum(model(batch).losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        states, summary = model.encode(0, model.in_proj["text"](batch.inputs["text"]), batch.mask["text"])
        assert decoder(states, batch.mask["text"], summary, long_visual.shape[1]).shape == long_visual.shape
    assert model(batch).losses["translation"].item() < 0.8 * first


def test_configuration_errors_name_the_fix(data):
    spec = data[0]
    with pytest.raises(ValueError, match="source 'speech'.*text"):
        build("mctn", spec, source="speech")
    with pytest.raises(ValueError, match="targets \\['text'\\]"):
        build("mctn", spec, source="text", targets=["text"])
    one = dataclasses.replace(spec, modalities=(Modality("text", 12),))
    with pytest.raises(ValueError, match="at least one target"):
        get_registry().build("model", "mctn", one)
