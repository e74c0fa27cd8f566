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
