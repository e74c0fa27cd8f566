"""MFM presets: each builds the original architecture at MOSI dims, params next to a preset win, run ids differ.

The expected parameter counts are computed here from the layer shapes of pliang279/factorized ``mfm_model.py``
(``encoderLSTM``, ``decoderLSTM``, ``MFN``, ``MFM``), independently of the model code.
"""

from __future__ import annotations

import pytest

from mfm_bench.contracts import DatasetSpec, Modality, Task
from mfm_bench.registry import get_registry
from mfm_bench.runner import run_id

MOSI = {"text": 300, "audio": 5, "visual": 20}


def mosi_spec() -> DatasetSpec:
    return DatasetSpec(
        name="mosi-dims",
        modalities=tuple(Modality(m, d, "sequence") for m, d in MOSI.items()),
        task=Task("regression", range=(-3.0, 3.0)),
        splits=("train", "valid", "test"),
    )


def linear(i: int, o: int) -> int:
    return i * o + o


def lstm_cell(i: int, h: int) -> int:
    return 4 * h * (i + h) + 8 * h  # weight_ih, weight_hh, bias_ih, bias_hh


def mlp(i: int, h: int, o: int) -> int:
    return linear(i, h) + linear(h, o)


def original_count(zy, z, fy, f, h, mem, window, nn1, nn2, g1, g2, out=1) -> int:
    """Parameters of the original ``MFM`` (MOSI text/audio/visual) from its layer shapes. The original's MFN also
    holds an output net (``out_fc1``, ``out_fc2``) that MFM never calls; it is left out, as here."""
    n = sum(lstm_cell(MOSI[m], z[m]) + linear(z[m], z[m]) for m in MOSI)  # encoderLSTM
    n += sum(lstm_cell(fy + f[m], fy + f[m]) + linear(fy + f[m], MOSI[m]) for m in MOSI)  # decoderLSTM
    att_in = sum(h.values()) * window
    n += sum(lstm_cell(MOSI[m], h[m]) for m in MOSI)  # MFN cells
    n += mlp(att_in, nn1, att_in) + mlp(att_in, nn2, mem) + mlp(att_in + mem, g1, mem) + mlp(att_in + mem, g2, mem)
    n += linear(sum(h.values()) + mem, zy)  # last_to_zy_fc1
    n += mlp(zy, fy, fy) + sum(mlp(z[m], f[m], f[m]) for m in MOSI)  # z -> F maps
    return n + mlp(fy, fy, out)  # fy_to_y


EXPECTED = {
    # best_acc: h 88/64/48, zy 32, z 32/8/80, fy 16, f 88/8/8, memory 64, window 2, NN1/NN2/gamma 128
    "original": original_count(
        32,
        {"text": 32, "audio": 8, "visual": 80},
        16,
        {"text": 88, "audio": 8, "visual": 8},
        {"text": 88, "audio": 64, "visual": 48},
        64,
        2,
        128,
        128,
        128,
        128,
    ),
    "default": None,  # the original's numbers
    # MMSA (mfm, mosi): hidden 128/32/128, zy 80, z 64/80/80, fy 64, f 32/16/64, NN1 32, NN2 64, gamma 32 and 64
    "mmsa": original_count(
        80,
        {"text": 64, "audio": 80, "visual": 80},
        64,
        {"text": 32, "audio": 16, "visual": 64},
        {"text": 128, "audio": 32, "visual": 128},
        64,
        2,
        32,
        64,
        32,
        64,
    ),
}
EXPECTED["default"] = EXPECTED["original"]


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_parameter_count_matches_the_original_architecture(preset: str) -> None:
    model = get_registry().build("model", "mfm", mosi_spec(), preset=preset)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED[preset]


def test_shared_generative_under_the_original_preset_is_the_original_M_A() -> None:
    """The original ``M_A`` builds its one generative code from the text settings: encoderLSTM(d_l + d_a + d_v,
    zl_size), zl -> fl map with zl_to_fl_dropout, decoders of width fy + fl (``mfm_model.py`` L223-238)."""
    model = get_registry().build("model", "mfm", mosi_spec(), preset="original", variant="shared_generative")
    d_all, z, f, fy, zy, h, mem = sum(MOSI.values()), 32, 88, 16, 32, {"text": 88, "audio": 64, "visual": 48}, 64
    att_in = sum(h.values()) * 2
    n = lstm_cell(d_all, z) + linear(z, z)  # encoderLSTM over all modalities
    n += sum(lstm_cell(fy + f, fy + f) + linear(fy + f, MOSI[m]) for m in MOSI)  # decoderLSTM(fy + fl, d_m)
    n += sum(lstm_cell(MOSI[m], h[m]) for m in MOSI)
    n += mlp(att_in, 128, att_in) + mlp(att_in, 128, mem) + 2 * mlp(att_in + mem, 128, mem)
    n += linear(sum(h.values()) + mem, zy) + mlp(zy, fy, fy) + mlp(z, f, f) + mlp(fy, fy, 1)
    assert sum(p.numel() for p in model.parameters()) == n
    assert model.maps["za_shared"].drop.p == 0.2  # zl_to_fl_dropout


def test_surrogates_under_the_original_preset_are_the_original_MFM_missing() -> None:
    """``MFM_missing`` adds six encoderLSTMs (``mfm_model.py`` L792-798): per missing modality m, one from the
    other two to z_a(m) and one to z_y, each as wide as its code."""
    spec = mosi_spec()
    plain = get_registry().build("model", "mfm", spec, preset="original")
    model = get_registry().build("model", "mfm", spec, preset="original", surrogate=True)
    z, zy = {"text": 32, "audio": 8, "visual": 80}, 32
    extra = 0
    for m in MOSI:
        d_others = sum(d for o, d in MOSI.items() if o != m)
        extra += lstm_cell(d_others, z[m]) + linear(z[m], z[m]) + lstm_cell(d_others, zy) + linear(zy, zy)
    count = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters())
    assert count == extra


def test_kl_variant_with_kl_encoder_original_is_the_original_MFM_KL() -> None:
    """``MFM_KL`` (``mfm_model.py`` L662-722) adds to ``MFM``, per generative code, ``last_to_z*_fc1`` and
    ``last_to_logvarz*_fc1`` (Linear(z, z) each) after encoderLSTM's own Linear, and for z_y
    ``last_to_logvarzy_fc1`` beside ``last_to_zy_fc1``; ``kl_encoder: direct`` has no inner Linear."""
    spec = mosi_spec()
    z, zy, mfn_out = {"text": 32, "audio": 8, "visual": 80}, 32, 88 + 64 + 48 + 64
    extra = sum(2 * linear(z[m], z[m]) for m in MOSI) + linear(mfn_out, zy)
    model = get_registry().build("model", "mfm", spec, preset="original", variant="kl", kl_encoder="original")
    assert sum(p.numel() for p in model.parameters()) == EXPECTED["original"] + extra
    direct = get_registry().build("model", "mfm", spec, preset="original", variant="kl")
    assert sum(p.numel() for p in direct.parameters()) == EXPECTED["original"] + extra - sum(
        linear(z[m], z[m]) for m in MOSI
    )


def test_params_next_to_a_preset_override_it_and_reach_the_run_id() -> None:
    reg = get_registry()
    base = reg.resolve("model", "mfm", {"preset": "mmsa"})
    assert base["zy"] == 80 and base["lambda_mmd"] == 100.0 and base["factor_dropout"]["audio"] == 0.7
    assert base["fusion_params"]["gamma_hidden"] == [32, 64] and base["fusion_params"]["attention_dropout"] == 0.7
    mine = reg.resolve("model", "mfm", {"preset": "mmsa", "zy": 12, "fusion_params": {"memory": 16}})
    assert (
        mine["zy"] == 12 and mine["fusion_params"]["memory"] == 16 and mine["fusion_params"]["attention_hidden"] == 32
    )
    # the resolved params rebuild the same config (resolution is idempotent)
    assert reg.resolve("model", "mfm", mine) == mine
    ids = {run_id({"model": "mfm", "params": reg.resolve("model", "mfm", {"preset": p})}) for p in EXPECTED}
    assert len(ids) == 3
    orig = reg.resolve("model", "mfm", {"preset": "original", "surrogate": True})
    assert orig["select_on"] == "total" and orig["fusion_params"]["skip_padding"] is False
    assert reg.resolve("model", "mfm", {"preset": "original"})["select_on"] == "label"  # train_mfm: the L1


def test_presets_leave_other_fusions_alone() -> None:
    r = get_registry().resolve("model", "mfm", {"preset": "original", "fusion": "concat"})
    assert "attention_hidden" not in r["fusion_params"]


def test_select_on_picks_the_validation_loss_the_model_or_the_suite_asks_for() -> None:
    import torch

    from mfm_bench.training import TrainConfig, Trainer

    losses = {"label": 0.5, "recon_text": 0.25, "surrogate": 1.0}
    plain, total_model = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    total_model.select_on = "total"
    auto = Trainer(TrainConfig(device="cpu"))
    assert auto.selection_loss(plain, losses) == 0.5 and auto.selection_loss(total_model, losses) == 1.75
    assert Trainer(TrainConfig(device="cpu", select_on="label")).selection_loss(total_model, losses) == 0.5
    assert Trainer(TrainConfig(device="cpu", select_on="total")).selection_loss(plain, losses) == 1.75


def test_original_preset_with_surrogates_validates_on_the_total_with_surrogate_terms() -> None:
    import torch

    reg = get_registry()
    ds = reg.build(
        "dataset",
        "synthetic-factors",
        n_train=8,
        n_valid=8,
        n_test=8,
        dims={"text": 6, "audio": 3, "visual": 4},
        seq_len=5,
        min_len=3,
    )
    model = reg.build("model", "mfm", ds.spec, preset="original", surrogate=True).eval()
    assert model.select_on == "total"
    with torch.no_grad():
        out = model(ds.split("valid").batch(slice(None)))
    assert {"label", "mmd", "surrogate", "surrogate_label", "surrogate_recon"} <= set(out.losses)
    clean = reg.build("model", "mfm", ds.spec, preset="default", surrogate=True).eval()
    with torch.no_grad():
        assert "surrogate" not in clean(ds.split("valid").batch(slice(None))).losses
