"""conv-signal pools over the positions that read real steps: padding does not move a sequence's encoding (it
averaged over padded positions, so a sample's encoding changed with the padding around it), and a vector's
encoding is computed exactly as before."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.registry import get_registry


def encoder(dim=3):
    torch.manual_seed(0)
    return get_registry().build("encoder", "conv-signal", dim).eval()


def padded(x, pad, side):
    """x [1, T, D] with ``pad`` zero steps before or after it, and its mask."""
    zeros, real = torch.zeros(1, pad, x.shape[2]), torch.ones(1, x.shape[1], dtype=torch.bool)
    none = torch.zeros(1, pad, dtype=torch.bool)
    if side == "after":
        return torch.cat([x, zeros], 1), torch.cat([real, none], 1)
    return torch.cat([zeros, x], 1), torch.cat([none, real], 1)


@pytest.mark.parametrize(("pad", "side"), [(2, "after"), (6, "after"), (23, "after"), (4, "before"), (20, "before")])
def test_padding_leaves_the_pooled_encoding_as_without_it(pad, side):
    enc = encoder()
    x = torch.randn(1, 7, 3)
    with torch.no_grad():
        alone, _ = enc(x, torch.ones(1, 7, dtype=torch.bool))
        pooled, seq = enc(*padded(x, pad, side))
    torch.testing.assert_close(pooled, alone, rtol=1e-5, atol=1e-6)  # the mean over every position differed by ~0.05
    assert seq.shape[1] > 2  # the padded feature map is longer: its extra positions were left out


def test_padded_positions_of_the_sequence_output_are_zero_and_a_missing_sample_pools_to_zero():
    enc = encoder()
    x, mask = padded(torch.randn(1, 8, 3), 16, "after")
    x, mask = torch.cat([x, torch.zeros_like(x)]), torch.cat([mask, torch.zeros_like(mask)])  # sample 1: missing
    with torch.no_grad():
        pooled, seq = enc(x, mask)
    assert seq.shape[1] == 6 and float(seq[0, 2:].abs().sum()) == 0.0 and float(seq[0, :2].abs().sum()) > 0
    assert float(pooled[1].abs().sum()) == 0.0


def test_every_sample_with_a_real_step_keeps_a_real_position():
    enc = encoder()
    mask = torch.eye(9, dtype=torch.bool)  # sample i has one real step, at i
    _, real = enc.masked_stack(torch.randn(9, 3, 9) * mask.unsqueeze(1), mask)
    assert real.shape == (9, 3) and bool(real.any(1).all())


def test_a_vector_is_encoded_exactly_as_before():
    enc = encoder(40)
    x = torch.randn(4, 40)
    with torch.no_grad():
        pooled, seq = enc(x, torch.ones(4, 1, dtype=torch.bool))
        before = enc.vector_net(x.unsqueeze(1)).transpose(1, 2)  # the former forward: the mean over every position
    assert torch.equal(seq, before) and torch.equal(pooled, before.mean(1))
