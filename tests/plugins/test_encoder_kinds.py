"""An encoder that cannot read a modality's kind (an image given to an LSTM) is refused by `mfm-bench validate`
and at model build, naming the dataset, the modality, its shape, the encoder and the fix; never inside forward.
paired-digits describes its modalities without scikit-learn, so none of this needs the [digits] extra."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.cli import main
from mfm_bench.contracts import Batch
from mfm_bench.encoder_kinds import EncoderKindError, encoder_kinds
from mfm_bench.plugins.datasets.paired_digits import PairedDigits, PairedDigitsConfig
from mfm_bench.registry import get_registry

SUITE = """\
name: digits
datasets: [paired-digits]
models:
  - {name: supervised, label: plain}
  - {name: supervised, label: fixed, params: {encoder: {image: conv-image, default: lstm}}}
"""


def test_validate_and_run_refuse_an_lstm_on_the_image(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    run = ["run", str(suite), "--out", str(tmp_path / "o"), "--no-progress"]
    for argv, rc in ((["validate", str(suite)], 1), (run, 2)):  # validate: an invalid suite; run: a usage error
        assert main(argv) == rc
        err = capsys.readouterr().err
        assert f"{suite}:4: models[0]: model 'plain': modality 'image' of dataset 'paired-digits'" in err
        assert "an image [C, H, W] = [1, 8, 8], which the 'lstm' encoder cannot read" in err
        assert "set encoder: {image: conv-image, default: lstm}" in err
    assert not (tmp_path / "o" / "results.sqlite").exists()  # nothing ran
    fixed = SUITE.replace("  - {name: supervised, label: plain}\n", "")
    suite.write_text(fixed)
    assert main(["validate", str(suite)]) == 0
    suite.write_text(fixed.replace("default: lstm", "default: lstm, signal: conv-image"))
    assert main(["validate", str(suite)]) == 1
    err = capsys.readouterr().err
    assert "models[0].params.encoder" in err and "modality 'signal'" in err and "a vector [D] = [40]" in err
    assert "set encoder: {signal: mean, image: conv-image, default: lstm}" in err  # the user's other choices kept


def test_model_build_refuses_it_before_any_module_runs():
    spec = PairedDigits.describe(PairedDigitsConfig())
    for model, params in (("supervised", {}), ("misa", {"encoder": "gru"})):
        with pytest.raises(EncoderKindError, match=rf"{model}: modality 'image' .* set encoder: \{{image: conv-image"):
            get_registry().build("model", model, spec, **params)


def test_the_fixed_model_reads_the_image_and_an_lstm_reads_the_vector():
    torch.manual_seed(0)
    spec = PairedDigits.describe(PairedDigitsConfig(signal_len=12))
    model = get_registry().build("model", "supervised", spec, encoder={"image": "conv-image", "default": "lstm"})
    mask = {m: torch.ones(3, 1, dtype=torch.bool) for m in ("image", "signal")}
    batch = Batch({"image": torch.rand(3, 1, 8, 8), "signal": torch.randn(3, 12)}, mask, torch.tensor([1, 2, 3]), [])
    out = model(batch)
    assert out.prediction.shape == (3, 10) and torch.isfinite(out.losses["label"])
    assert encoder_kinds(get_registry(), "lstm") == ("sequence", "vector")
    assert encoder_kinds(get_registry(), "conv-image") == ("image",)


RAW = """\
name: digits
datasets: [paired-digits]
models:
  - {name: supervised, label: MulT, params: {fusion: mult, encoder: {image: conv-image, default: lstm}}}
"""


def test_a_raw_sequence_fusion_on_an_image_is_refused_with_a_fix_that_works(tmp_path, capsys):
    # validate advised an image encoder for MulT, which reads the raw modalities before any encoder: the advised
    # suite passed validate and every run failed at build
    suite = tmp_path / "s.yaml"
    suite.write_text(RAW)
    assert main(["validate", str(suite)]) == 1
    err = capsys.readouterr().err
    assert f"{suite}:4: models[0].params.fusion: model 'MulT': fusion 'mult' reads the raw modalities" in err
    assert "no encoder setting helps" in err and "modality 'image' of dataset 'paired-digits' is an image" in err
    assert "set fusion: concat with an image encoder, encoder: {image: conv-image, default: lstm}" in err
    listed = err.split("fusions that read encoded modalities: ", 1)[1].split(")", 1)[0].split(", ")
    assert {"concat", "late", "lmf", "tfn"} <= set(listed) and not {"mult", "mfn", "ef_lstm"} & set(listed)
    suite.write_text(RAW.replace("fusion: mult", "fusion: concat"))  # the advice, followed
    assert main(["validate", str(suite)]) == 0
    spec = PairedDigits.describe(PairedDigitsConfig(signal_len=12))
    for fusion in listed:  # every fusion the message names builds and reads this dataset
        model = get_registry().build(
            "model", "supervised", spec, fusion=fusion, encoder={"image": "conv-image", "default": "lstm"}
        )
        mask = {m: torch.ones(2, 1, dtype=torch.bool) for m in ("image", "signal")}
        out = model(
            Batch({"image": torch.rand(2, 1, 8, 8), "signal": torch.randn(2, 12)}, mask, torch.tensor([1, 2]), [])
        )
        assert out.prediction.shape == (2, 10)


def test_mfm_is_told_the_fusions_that_return_a_vector(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(RAW.replace("supervised, label: MulT, params: {fusion: mult", "mfm, params: {fusion: mfn"))
    assert main(["validate", str(suite)]) == 1
    err = capsys.readouterr().err
    assert "fusion 'mfn' reads the raw modalities" in err
    assert "(fusions that read encoded modalities and return a vector: concat)" in err
    # a predicting fusion, which MFM refuses at build, is refused by validate as well, on any dataset
    suite.write_text("name: s\ndatasets: [synthetic-factors]\nmodels: [{name: mfm, params: {fusion: tfn}}]\n")
    assert main(["validate", str(suite)]) == 1
    err = capsys.readouterr().err
    assert "models[0].params.fusion: model 'mfm': fusion 'tfn' predicts labels itself" in err
    assert "set fusion: concat" in err


def test_a_fusion_s_input_kind_is_read_from_its_source_without_importing_it(tmp_path, monkeypatch):
    import sys

    from mfm_bench import hookimpl
    from mfm_bench.encoder_kinds import fusion_attribute
    from mfm_bench.testing import temporary_plugin

    (tmp_path / "rawfusion_under_test.py").write_text(
        "raise ImportError('never imported')\n\nclass Steps:\n    input_kind = 'raw'\n    predicts: bool = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    class Plugin:
        @hookimpl
        def register_fusions(self, register):
            register("steps-under-test", "rawfusion_under_test:Steps")

    with temporary_plugin(Plugin(), "steps-under-test") as reg:
        assert fusion_attribute(reg, "steps-under-test", "input_kind") == "raw"
        assert fusion_attribute(reg, "steps-under-test", "predicts") is True
        assert fusion_attribute(reg, "steps-under-test", "output_dim") is None
        assert fusion_attribute(reg, "mult", "input_kind") == "raw"
        assert fusion_attribute(reg, "concat", "input_kind") == "pooled"
    assert "rawfusion_under_test" not in sys.modules
