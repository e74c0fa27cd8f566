"""The fail-fast data check of `mfm-bench run`: a dataset whose folder serves only some of its modalities gets
the modality subset that would run and the suite entry to write."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from mfm_bench.datacheck import SuiteDataMissingError, check_data
from mfm_bench.suite import load_suite

SUITE = """\
name: av
datasets:
  - {name: youtube, label: yt, params: {seq_len: 12}}
models: [{name: supervised, params: {fusion: concat}}]
seeds: [0]
train: {epochs: 1, device: cpu}
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data home whose youtube folder has the acoustic, visual and label files, not the text embeddings."""
    folder = tmp_path / "data" / "mfn-h5" / "youtube"
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        for name, dim in ((f"audio_{split}.h5", 74), (f"video_{split}.h5", 36), (f"y_{split}.h5", 3)):
            with h5py.File(folder / name, "w") as f:
                f["d1"] = np.zeros((2, 20, dim) if dim != 3 else (2, 3))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "data"))
    return tmp_path


def test_missing_modality_names_the_subset_and_the_suite_line(home, write_suite):
    suite = load_suite(write_suite(SUITE))
    with pytest.raises(SuiteDataMissingError) as info:
        check_data(suite)
    text = str(info.value)
    assert "mfn-h5/youtube has every file of audio, visual but not of text" in text
    entry = re.search(r"\n      - (\{.*\})", text).group(1)
    assert entry == "{name: youtube, label: yt, params: {seq_len: 12, modalities: [audio, visual]}}"
    fixed = write_suite(SUITE.replace("{name: youtube, label: yt, params: {seq_len: 12}}", entry), "fixed.yaml")
    check_data(load_suite(fixed))  # the suggested entry passes the check


def test_no_subset_is_suggested_when_the_labels_are_missing(home, write_suite):
    for split in ("train", "valid", "test"):
        (home / "data" / "mfn-h5" / "youtube" / f"y_{split}.h5").unlink()
    with pytest.raises(SuiteDataMissingError) as info:
        check_data(load_suite(write_suite(SUITE)))
    assert "has the files of" not in str(info.value) and "mfm-bench fetch youtube" in str(info.value)


class _RequiredRoot:
    """A third-party dataset whose config has a required param (no default) and a modality subset."""

    @staticmethod
    def declare(cfg):
        from mfm_bench.contracts import DataDeclaration, DataFile, DataFormat

        roles = [*(cfg.modalities or ("audio", "visual")), "labels"]
        return DataDeclaration("rooted", (DataFormat("npy", cfg.root, tuple(DataFile(f"{r}.npy", r) for r in roles)),))

    @staticmethod
    def describe(cfg):  # pragma: no cover - the data check reads only the declaration
        raise AssertionError


def test_a_plugin_with_required_params_gets_the_hint_with_them(tmp_path, write_suite):
    from dataclasses import dataclass

    from mfm_bench import hookimpl
    from mfm_bench.testing import temporary_plugin

    @dataclass
    class RootedConfig:
        root: str
        modalities: list[str] | None = None

        def __post_init__(self):
            if self.modalities is not None and set(self.modalities) - {"audio", "visual"}:
                raise ValueError(f"modalities must be a subset of audio, visual, got {self.modalities}")

    class Plugin:
        @hookimpl
        def register_datasets(self, register):
            register("rooted", _RequiredRoot, config=RootedConfig)

    for name in ("audio.npy", "labels.npy"):
        (tmp_path / name).write_bytes(b"")
    suite = SUITE.replace(
        "{name: youtube, label: yt, params: {seq_len: 12}}", f"{{name: rooted, params: {{root: {tmp_path}}}}}"
    )
    with temporary_plugin(Plugin(), "rooted-plugin"):
        with pytest.raises(SuiteDataMissingError) as info:
            check_data(load_suite(write_suite(suite), check_files=False))
    assert f"- {{name: rooted, params: {{root: {tmp_path}, modalities: [audio]}}}}" in str(info.value)


def test_csd_text_is_kept_in_the_subset_through_its_words_file(tmp_path, monkeypatch, write_suite):
    """CMU-MOSI's CSD text is its word-vector file (role words): with the words, acoustic and label files there
    and no visual one, the subset offered is text and audio, not audio alone."""
    folder = tmp_path / "data" / "csd" / "CMU_MOSI"
    folder.mkdir(parents=True)
    for name in ("TimestampedWordVectors", "COVAREP", "Opinion_Labels"):
        (folder / f"CMU_MOSI_{name}.csd").touch()
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "data"))
    suite = SUITE.replace(
        "{name: youtube, label: yt, params: {seq_len: 12}}", "{name: cmu-mosi, params: {format: csd}}"
    )
    with pytest.raises(SuiteDataMissingError) as info:
        check_data(load_suite(write_suite(suite), check_files=False))
    assert "has every file of text, audio but not of visual" in str(info.value)
    assert "- {name: cmu-mosi, params: {format: csd, modalities: [text, audio]}}" in str(info.value)
