"""``ef_lstm`` (early fusion over time) and ``late`` (mean or learned weights)."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import build, one_thread, synthetic  # noqa: F401

from mfm_bench.registry import get_registry


@pytest.fixture(scope="module")
def data():
    return synthetic("regression", n_train=32, n_test=16)


def test_ef_lstm_is_raw_reads_every_step_and_ignores_padding(data):
    spec, train, _, _ = data
    model = build("ef_lstm", spec).eval()
    assert len(model.encoders) == 0 and model.input_kind == "raw"  # no unused encoders counted as parameters
    fusion = model.fusion
    batch = train.batch(slice(0, 8))
    out = fusion(batch.inputs, batch.mask)
    assert out.shape == (8, fusion.output_dim)
    garbage = {m: x + 3 * torch.randn_like(x) * ~batch.mask[m].unsqueeze(-1) for m, x in batch.inputs.items()}
    torch.testing.assert_close(fusion(garbage, batch.mask), out)
    # A missing modality reads as zeros whatever its content.
    mask = dict(batch.mask, audio=torch.zeros_like(batch.mask["audio"]))
    torch.testing.assert_close(
        fusion(dict(batch.inputs, audio=torch.randn_like(batch.inputs["audio"])), mask),
        fusion(dict(batch.inputs, audio=torch.zeros_like(batch.inputs["audio"])), mask),
    )


def test_ef_lstm_follows_the_reference_one_lstm_last_state_and_two_layer_head(data):
    """As pliang279/MFN's EFLSTM: one forward LSTM over the joint steps (the state at t ignores later steps), its last
    state read without dropout (train mode is deterministic), and a head fc1 (h -> h), ReLU, dropout, fc2."""
    spec, train, _, _ = data
    torch.manual_seed(0)
    model = build("ef_lstm", spec).train()
    fusion, batch = model.fusion, train.batch(slice(0, 8))
    torch.testing.assert_close(fusion(batch.inputs, batch.mask), fusion(batch.inputs, batch.mask))
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 64), (64, 1)] and fusion.output_dim == 64
    x = torch.cat([batch.inputs[m] for m in fusion.names], -1)  # (B, T, sum D)
    later = torch.cat([x[:, :3], torch.randn_like(x[:, 3:])], 1)
    with torch.no_grad():
        torch.testing.assert_close(fusion.rnn(x)[0][:, :3], fusion.rnn(later)[0][:, :3])


def test_ef_lstm_refuses_unaligned_modalities():
    fusion = get_registry().build("fusion", "ef_lstm", {"a": 2, "b": 3})
    inputs = {"a": torch.zeros(2, 4, 2), "b": torch.zeros(2, 6, 3)}
    mask = {"a": torch.ones(2, 4, dtype=torch.bool), "b": torch.ones(2, 6, dtype=torch.bool)}
    with pytest.raises(ValueError, match="aligned.*'mult'"):
        fusion(inputs, mask)


def late(weighting: str):
    torch.manual_seed(0)
    dims = {"a": 3, "b": 3, "c": 3}
    return get_registry().build("fusion", "late", dims, context={"out_dim": 2}, weighting=weighting).eval()


def test_late_mean_averages_the_present_modalities():
    fusion = late("mean")
    x = {m: torch.randn(4, 3) for m in "abc"}
    mask = {m: torch.ones(4, 5, dtype=torch.bool) for m in "abc"}
    mask["c"] = torch.tensor([[True] * 5, [False] * 5, [True] * 5, [False] * 5])
    out = fusion(x, mask)
    unimodal = {m: fusion.heads[m](x[m]) for m in "abc"}
    torch.testing.assert_close(out[0], (unimodal["a"][0] + unimodal["b"][0] + unimodal["c"][0]) / 3)
    torch.testing.assert_close(out[1], (unimodal["a"][1] + unimodal["b"][1]) / 2)


def test_late_learned_weights_are_a_softmax_over_present_modalities_and_train():
    fusion = late("learned")
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    present = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    w = fusion.weights(present)
    torch.testing.assert_close(w[0], torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0))
    torch.testing.assert_close(w[1], torch.tensor([1 / (1 + torch.e**2), 0.0, torch.e**2 / (1 + torch.e**2)]))
    torch.testing.assert_close(w[2], w[0])  # nothing present: every modality votes
    x = {m: torch.randn(4, 3) for m in "abc"}
    mask = {m: torch.ones(4, 5, dtype=torch.bool) for m in "abc"}
    fusion.train()
    fusion(x, mask).pow(2).sum().backward()
    assert fusion.logits.grad is not None and fusion.logits.grad.abs().sum() > 0
    assert late("mean").logits is None  # the default keeps the plain mean and no extra parameter


def test_bidirectional_ef_lstm_fuses_each_directions_final_state():
    """With bidirectional: true the fused vector is the forward state at the last step and the backward state at the
    first step (the backward direction's final state, h_n), not the backward state after one step."""
    torch.manual_seed(0)
    dims = {"a": 2, "b": 3}
    fusion = get_registry().build("fusion", "ef_lstm", dims, hidden=4, bidirectional=True).eval()
    inputs = {m: torch.randn(5, 6, d) for m, d in dims.items()}
    mask = {m: torch.ones(5, 6, dtype=torch.bool) for m in dims}
    with torch.no_grad():
        out = fusion(inputs, mask)
        _, (h_n, _) = fusion.rnn(torch.cat([inputs["a"], inputs["b"]], dim=-1))
    assert out.shape == (5, 8) == (5, fusion.output_dim)
    torch.testing.assert_close(out, torch.cat([h_n[0], h_n[1]], dim=-1))
