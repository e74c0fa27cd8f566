"""The CSD path: standard folds, file names and the glue to mfm_bench.align.prepare_word_level (replaced here by a
stand-in that records its arguments; the end-to-end test on real .csd files needs the alignment module)."""

from __future__ import annotations

import numpy as np
import pytest

import mfm_bench.align as align
from mfm_bench.plugins.datasets.manifests import folds_of
from mfm_bench.registry import get_registry


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "nodata"))


@pytest.mark.parametrize(
    "name,sizes", [("cmu-mosi", (52, 10, 31)), ("pom", (600, 100, 203)), ("cmu-mosei", (2250, 300, 678))]
)
def test_standard_folds_are_disjoint_with_the_standard_sizes(name, sizes):
    folds = folds_of(name)
    assert tuple(len(folds[s]) for s in ("train", "valid", "test")) == sizes
    ids = [v for s in folds.values() for v in s]
    assert len(set(ids)) == len(ids)


def fake_prepare(calls, label_dim, dims=None):
    dims = dims or {"words": 300, "audio": 74, "visual": 47}

    def prepare_word_level(paths, words, labels, seq_len, folds):
        calls.append(dict(paths=paths, words=words, labels=labels, seq_len=seq_len, folds=folds))
        rng = np.random.default_rng(0)
        out = {}
        for split, vids in folds.items():
            n = 2 * len(vids[:5])
            fold = {m: rng.normal(size=(n, seq_len, dims[m])) for m in paths if m in dims}
            for m in list(fold):
                fold[m][:, :3] = 0.0
            fold[labels] = rng.uniform(-3, 3, size=(n, label_dim))
            fold["ids"] = [f"{v}[{k}]" for v in vids[:5] for k in range(2)]
            out[split] = fold
        return out

    return prepare_word_level


def touch_all(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_cmu_mosi_csd_calls_the_alignment_with_standard_files_and_folds(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(align, "prepare_word_level", fake_prepare(calls, 1), raising=False)
    folder = tmp_path / "csd" / "CMU_MOSI"
    touch_all(
        folder,
        [
            "CMU_MOSI_TimestampedWordVectors.csd",
            "CMU_MOSI_COVAREP.csd",
            "CMU_MOSI_Visual_Facet_41.csd",
            "CMU_MOSI_Opinion_Labels.csd",
        ],
    )
    ds = get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), format="csd", normalise="none")
    (call,) = calls
    assert call["seq_len"] == 20 and call["words"] == "words" and call["labels"] == "labels"
    # the word vectors are the reference that times the words, and the text modality
    assert {k: v.rsplit("/", 1)[-1] for k, v in call["paths"].items()} == {
        "words": "CMU_MOSI_TimestampedWordVectors.csd",
        "audio": "CMU_MOSI_COVAREP.csd",
        "visual": "CMU_MOSI_Visual_Facet_41.csd",
        "labels": "CMU_MOSI_Opinion_Labels.csd",
    }
    assert call["folds"] == folds_of("cmu-mosi")
    assert ds.spec.input_dims == {"text": 300, "audio": 74, "visual": 47} and ds.spec.task.kind == "regression"
    tr = ds.split("train")
    assert tr.ids[0] == f"{folds_of('cmu-mosi')['train'][0]}[0]" and tr.target.shape == (10,)
    assert not tr.mask["audio"][:, :3].any() and tr.mask["audio"][:, 3:].all()


def test_csd_missing_feature_file_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "csd" / "CMU_MOSI"
    touch_all(folder, ["CMU_MOSI_COVAREP.csd", "CMU_MOSI_Opinion_Labels.csd"])
    with pytest.raises(FileNotFoundError, match="CMU_MOSI_Visual_Facet_41.csd"):
        get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), format="csd")
    # acoustic only still needs the word vectors: they time the words
    with pytest.raises(FileNotFoundError, match="CMU_MOSI_TimestampedWordVectors.csd"):
        get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), format="csd", modalities=["audio"])
    touch_all(folder, ["CMU_MOSI_TimestampedWordVectors.csd"])
    calls = []
    monkeypatch.setattr(align, "prepare_word_level", fake_prepare(calls, 1), raising=False)
    ds = get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), format="csd", modalities=["audio"])
    assert set(calls[0]["paths"]) == {"audio", "words", "labels"} and ds.spec.modality_names == ["audio"]


def test_cmu_mosei_emotions_from_csd_labels(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(
        align, "prepare_word_level", fake_prepare(calls, 7, {"words": 300, "audio": 74, "visual": 35}), raising=False
    )
    touch_all(
        tmp_path / "csd" / "CMU_MOSEI",
        [
            "CMU_MOSEI_TimestampedWordVectors.csd",
            "CMU_MOSEI_COVAREP.csd",
            "CMU_MOSEI_VisualFacet42.csd",
            "CMU_MOSEI_Labels.csd",
        ],
    )
    ds = get_registry().build("dataset", "cmu-mosei", path=str(tmp_path), label="emotions")
    assert ds.format == "csd" and ds.spec.task.kind == "multi_regression" and len(ds.spec.task.targets) == 6
    assert ds.split("valid").target.shape == (10, 6)


@pytest.mark.skipif(
    not hasattr(align, "write_csd") or not hasattr(align, "prepare_word_level"),
    reason="the alignment module is not in this installation",
)
def test_cmu_mosi_from_real_csd_files_end_to_end(tmp_path):
    """Small .csd files written with the alignment module's writer, prepared through the real pipeline."""
    folds = folds_of("cmu-mosi")
    vids = folds["train"][:2] + folds["valid"][:1] + folds["test"][:1]
    rng = np.random.default_rng(0)

    def frames(name, rate, dim):
        t = np.arange(int(4.0 * rate)) / rate
        return align.CompSeq.from_dict(
            name, {v: (np.stack([t, t + 1 / rate], 1), rng.normal(size=(len(t), dim))) for v in vids}
        )

    t = np.arange(0, 4.0, 0.25)  # 16 words of 0.2 s per video
    words = align.CompSeq.from_dict(
        "glove_vectors", {v: (np.stack([t, t + 0.2], 1), rng.normal(size=(16, 300))) for v in vids}
    )
    labels = {v: rng.uniform(-3, 3, size=(2, 1)) for v in vids}
    d = tmp_path / "csd" / "CMU_MOSI"
    d.mkdir(parents=True)
    align.write_csd(d / "CMU_MOSI_TimestampedWordVectors.csd", words)
    align.write_csd(d / "CMU_MOSI_COVAREP.csd", frames("COVAREP", 50, 74))
    align.write_csd(d / "CMU_MOSI_Visual_Facet_41.csd", frames("FACET_4.1", 15, 47))
    align.write_csd(
        d / "CMU_MOSI_Opinion_Labels.csd",
        align.CompSeq.from_dict("labels", {v: (np.array([[0.0, 2.0], [2.0, 4.0]]), y) for v, y in labels.items()}),
    )
    ds = get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), seq_len=10, normalise="none")
    assert ds.format == "csd" and ds.spec.input_dims == {"text": 300, "audio": 74, "visual": 47}
    tr = ds.split("train")
    assert tr.ids == [f"{v}[{k}]" for v in vids[:2] for k in (0, 1)]
    np.testing.assert_allclose(tr.target.numpy(), np.concatenate([labels[v][:, 0] for v in vids[:2]]), rtol=1e-6)
    # 8 words per 2 s segment, left-padded to 10 steps
    assert tr.mask["text"].sum(1).tolist() == [8, 8, 8, 8] and not tr.mask["text"][:, :2].any()
    # the text modality is the word vectors themselves
    np.testing.assert_allclose(tr.inputs["text"][0, 2:].numpy(), words[vids[0]].features[:8], rtol=1e-5)
    assert len(ds.split("valid")) == 2 and len(ds.split("test")) == 2


@pytest.mark.parametrize("name", ["cmu-mosi", "cmu-mosei", "pom"])
def test_features_for_some_modalities_keep_the_defaults_for_the_others(name):
    # docs/datasets.md's own example: `features: {visual: FACET 4.2}` picks the visual file only
    reg = get_registry()
    cfg = reg.config_of("dataset", name, {"format": "csd", "features": {"visual": "FACET 4.2"}})
    assert cfg.features["visual"] == "FACET 4.2" and cfg.features["text"] == "glove_vectors"
    files = {f.role: f.name for f in reg.get("dataset", name).factory.declare(cfg).format("csd").files}
    assert set(files) == {"words", "audio", "visual", "labels"} and "42" in files["visual"].replace("_", "")
    default = reg.config_of("dataset", name, {"format": "csd"}).features
    full = reg.config_of("dataset", name, {"format": "csd", "features": dict(default)}).features
    assert full == default and list(full) == list(default)


@pytest.mark.parametrize(
    "features, message",
    [
        ({"video": "FACET 4.2"}, "features: keys are modalities ['text', 'audio', 'visual'], not 'video'"),
        ({"visual": "FACET 9"}, "features.visual: cmu-mosi has no standard CSD feature 'FACET 9'; choose from"),
    ],
)
def test_bad_features_name_the_key_and_the_choices(features, message):
    with pytest.raises(ValueError) as err:
        get_registry().config_of("dataset", "cmu-mosi", {"format": "csd", "features": features})
    assert message in str(err.value)
