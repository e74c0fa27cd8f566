"""MFM on images and vectors: decoders per modality, build errors naming the modality and the fix, and the
conditional generation grid measured by a classifier of the real images."""

from __future__ import annotations

import json

import pytest
import torch

from mfm_bench.cli import main
from mfm_bench.errors import MfmBenchError
from mfm_bench.plugins.models.mfm_decoders import ImageConvDecoder, SignalConvDecoder
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer, iterate

pytest.importorskip("sklearn")
pytest.importorskip("mnist1d")

IMG = dict(
    encoder={"image": "conv-image", "signal": "conv-signal"},
    encoder_params={"channels": 8, "hidden": 16},
    fusion="concat",
    decoder={"image": "conv-image", "signal": "conv-signal"},
    zy=8,
    za=8,
    fy=16,
    fa=16,
    lambda_x=1.0,
    lambda_mmd=1.0,
    encoder_width="plugin",
    factor_dropout=0.0,
)  # the preset's would replace
# the encoders' hidden 16 by the code size and put dropout 0.7 in the factor maps of a model tuned without


@pytest.fixture(scope="module")
def digits():
    return get_registry().build("dataset", "paired-digits")


def mfm(spec, **params):
    return get_registry().build("model", "mfm", spec, **{**IMG, **params})


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (2, 5, 7)])
def test_image_decoder_writes_any_size_with_the_same_parameters(shape):
    dec = ImageConvDecoder(12, shape[0])
    n = sum(p.numel() for p in dec.parameters())
    assert dec(torch.randn(4, 12), shape).shape == (4, *shape)
    assert n == sum(p.numel() for p in ImageConvDecoder(12, shape[0]).parameters())


@pytest.mark.parametrize("D", [40, 37, 9])
def test_signal_decoder_writes_its_length(D):
    assert SignalConvDecoder(6, D)(torch.randn(3, 6), (D,)).shape == (3, D)


@pytest.mark.parametrize(
    "params, words",
    [
        ({"encoder": "lstm"}, ["'image'", "encoder", "conv-image"]),
        ({"decoder": "lstm"}, ["'image'", "'lstm' decoder", "decoder: {image: conv-image"]),
        ({"decoder": {"image": "mlp", "default": "mlp"}}, ["'image'", "'mlp' decoder"]),
        ({"decoder": {"image": "deconv", "default": "mlp"}}, ["'deconv'", "unknown", "'image'"]),
        ({"fusion": "mfn"}, ["'mfn'", "'image'", "fusion: concat"]),
        ({"variant": "shared_generative"}, ["shared_generative", "'image'"]),
    ],
)
def test_build_refuses_what_cannot_read_or_write_an_image(digits, params, words):
    with pytest.raises(MfmBenchError) as e:
        mfm(digits.spec, **params)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_image_decoder_on_a_sequence_modality_is_refused():
    ds = get_registry().build(
        "dataset", "synthetic-factors", n_train=8, n_valid=4, n_test=4, dims={"a": 3, "b": 4}, seq_len=5, min_len=3
    )
    with pytest.raises(
        MfmBenchError, match=r"modality 'a'.*sequence \[T, D\].*'conv-image' decoder.*decoder: \{a: lstm"
    ):
        get_registry().build("model", "mfm", ds.spec, fusion="concat", decoder={"a": "conv-image", "default": "lstm"})


@pytest.mark.parametrize("extra", [{}, {"surrogate": True}, {"variant": "kl"}, {"variant": "no_discriminative"}])
def test_reconstructions_have_each_modalitys_shape_and_every_part_learns(digits, extra):
    torch.manual_seed(0)
    model = mfm(digits.spec, **extra)
    batch = next(iter(iterate(digits.split("train"), 16, torch.device("cpu"))))
    x_hat = model.decode(model.factorize(model.encode(batch)[0]), model.shapes(batch))
    assert x_hat["image"].shape == (16, 1, 8, 8) and x_hat["signal"].shape == (16, 40)
    out = model(batch)
    assert {"label", "recon_image", "recon_signal"} <= set(out.losses)
    sum(out.losses.values()).backward()
    dead = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad is None and "sequence_net" not in n and "vector_net" not in n
    ]  # conv-signal keeps both first layers
    assert not dead, dead


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = mfm(digits.spec, surrogate=True)
    Trainer(TrainConfig(epochs=6, batch_size=64, lr=0.003, device="cpu", threads=1)).fit(
        model, digits.split("train"), digits.split("valid"), seed=0
    )
    return model


def test_generated_images_keep_the_row_digit(digits, trained, tmp_path):
    metrics = trained.write_artifacts(digits, tmp_path, "cpu")
    got = {m: v for _, _, m, v in metrics}
    assert got["gen_chance"] == pytest.approx(0.1) and got["gen_classifier_acc"] > 0.9
    # after 6 epochs of a tiny model: the digit follows z_y (row), twice chance or more, and above the z_a donor's
    # (column) label
    assert got["gen_row_agreement"] > 0.2 and got["gen_row_agreement"] > 2 * got["gen_column_agreement"]
    # the image rebuilt from the signal alone is not asserted legible: after 6 epochs its accuracy was 0.145,
    # 0.097, 0.093, 0.204 and 0.234 for seeds 0 to 4 (chance 0.1), so no bound above chance holds across seeds here
    # (docs/digits.md measures it after the suite's 20 epochs); it is an accuracy, written with the others
    assert 0.0 <= got["gen_missing_acc"] <= 1.0
    written = json.loads((tmp_path / "generation.json").read_text())
    assert {k: written[k] for k in got} == got
    assert (tmp_path / "generation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_grid_without_both_codes(digits, tmp_path):
    for variant in ("no_generative", "discriminative_only", "no_discriminative"):
        assert mfm(digits.spec, variant=variant).write_artifacts(digits, tmp_path, "cpu") == []
    assert not (tmp_path / "generation.png").exists()


def test_generate_command(digits, trained, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = {
        "dataset": {"name": "paired-digits", "params": {}},
        "model": {"name": "mfm", "params": {**IMG, "surrogate": True}},
    }
    (run / "config.json").write_text(json.dumps(config))
    torch.save(trained.state_dict(), run / "model.pt")
    assert main(["generate", str(run), "--out", str(tmp_path / "fig"), "--columns", "3"]) == 0
    assert json.loads((tmp_path / "fig" / "generation.json").read_text())["columns"] == 3
    config["model"]["params"]["variant"] = "discriminative_only"
    config["model"]["params"]["surrogate"] = False
    (run / "config.json").write_text(json.dumps(config))
    torch.save(mfm(digits.spec, variant="discriminative_only").state_dict(), run / "model.pt")
    assert main(["generate", str(run)]) == 2
