"""MFN h5 readers and the ict-mmmo / youtube / cmu-mosi plugins, on files the tests write and on the real copies
in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mfm_bench.plugins.datasets import mfn_h5
from mfm_bench.plugins.datasets.base import DataMissingError
from mfm_bench.registry import get_registry

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data"
REAL = SHARED / "mfn-h5"
needs_real = pytest.mark.skipif(not (REAL / "mmmo" / "audio_train.h5").is_file(), reason="../shared/data/mfn-h5 absent")
AV = ["audio", "visual"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "nodata"))


@pytest.fixture()
def one_thread():
    """Small LSTMs train faster on one thread, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build(name, **params):
    return get_registry().build("dataset", name, **params)


def write(path: Path, key: str, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=arr)


def make_folder(root: Path, sizes=(12, 5, 6), dims=None, labels="rating", seed=0) -> dict:
    """An MFN folder with left-padded random sequences; returns the raw arrays."""
    rng = np.random.default_rng(seed)
    dims = dims or {"text": 300, "audio": 74, "visual": 36}
    raw = {}
    for split, n in zip(("train", "valid", "test"), sizes):
        lengths = rng.integers(0, 21, size=n)
        for m, d in dims.items():
            x = rng.normal(3.0, 2.0, size=(n, 20, d))
            x[np.arange(20)[None, :] < (20 - lengths)[:, None]] = 0.0
            fname = mfn_h5.FOLDER_FILES[m].format(split=split)
            write(root / fname, "d1", x)
            raw[(split, m)] = x
        if labels == "rating":
            y = rng.uniform(1, 5, size=n)
        else:
            y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=n)]
        write(root / f"y_{split}.h5", "d1", y)
        raw[(split, "y")] = y
    return raw


def test_mask_marks_nonzero_steps_and_left_padding_is_kept(tmp_path):
    raw = make_folder(tmp_path / "mfn-h5" / "mmmo")
    ds = build("ict-mmmo", path=str(tmp_path), normalise="none")  # a data home holding mfn-h5/mmmo
    assert ds.format == "mfn-h5" and ds.folder == tmp_path / "mfn-h5" / "mmmo"
    tr = ds.split("train")
    expect = np.any(raw[("train", "audio")] != 0, axis=-1)
    assert torch.equal(tr.mask["audio"], torch.from_numpy(expect))
    np.testing.assert_allclose(tr.inputs["visual"].numpy(), raw[("train", "visual")].astype(np.float32))
    assert tr.inputs["text"].dtype == torch.float32 and tr.mask["text"].dtype == torch.bool


def test_ict_mmmo_label_conventions(tmp_path):
    raw = make_folder(tmp_path / "mmmo")
    binary = build("ict-mmmo", path=str(tmp_path / "mmmo"))
    assert binary.spec.task.kind == "classification" and binary.spec.task.n_classes == 2
    y = raw[("test", "y")]
    assert torch.equal(binary.split("test").target, torch.from_numpy((y > 3.5).astype(np.int64)))
    reg = build("ict-mmmo", path=str(tmp_path / "mmmo"), label="regression")
    assert reg.spec.task.kind == "regression" and reg.spec.task.range == (1.0, 5.0)
    np.testing.assert_allclose(reg.split("test").target.numpy(), y.astype(np.float32))


def test_youtube_one_hot_becomes_class_index(tmp_path):
    raw = make_folder(tmp_path / "youtube", labels="onehot")
    ds = build("youtube", path=str(tmp_path / "youtube"))
    assert ds.spec.task.class_names == ("negative", "neutral", "positive")
    assert torch.equal(ds.split("valid").target, torch.from_numpy(raw[("valid", "y")].argmax(1)))


def test_normalisation_uses_train_statistics_only_and_keeps_padding_zero(tmp_path):
    raw = make_folder(tmp_path / "mmmo")
    ds = build("ict-mmmo", path=str(tmp_path / "mmmo"))
    tr, te = ds.split("train"), ds.split("test")
    real = tr.inputs["audio"][tr.mask["audio"]]
    np.testing.assert_allclose(real.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(real.std(0, unbiased=False).numpy(), 1.0, atol=1e-3)
    assert (te.inputs["audio"][~te.mask["audio"]] == 0).all()
    # the test split is transformed with the train statistics, not its own
    xr = raw[("train", "audio")]
    m = np.any(xr != 0, -1)
    mu, sd = xr[m].mean(0), xr[m].std(0)
    xt = raw[("test", "audio")]
    mt = np.any(xt != 0, -1)
    np.testing.assert_allclose(te.inputs["audio"].numpy()[mt], ((xt[mt] - mu) / sd), rtol=1e-4, atol=1e-4)


def test_seq_len_keeps_the_last_steps(tmp_path):
    raw = make_folder(tmp_path / "mmmo")
    ds = build("ict-mmmo", path=str(tmp_path / "mmmo"), seq_len=8, normalise="none")
    assert ds.spec.seq_len == 8
    np.testing.assert_allclose(
        ds.split("train").inputs["audio"].numpy(), raw[("train", "audio")][:, -8:].astype(np.float32)
    )
    longer = build("ict-mmmo", path=str(tmp_path / "mmmo"), seq_len=25, normalise="none")
    assert not longer.split("train").mask["audio"][:, :5].any()


def test_missing_modality_files_are_named(tmp_path):
    make_folder(tmp_path / "mmmo")
    (tmp_path / "mmmo" / "text_train_emb.h5").unlink()
    with pytest.raises(DataMissingError, match="text_train_emb.h5"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"))
    ds = build("ict-mmmo", path=str(tmp_path / "mmmo"), modalities=AV)
    assert ds.spec.modality_names == AV


def test_missing_files_advice_fits_what_is_missing(tmp_path):
    make_folder(tmp_path / "mmmo")
    (tmp_path / "mmmo" / "text_train_emb.h5").unlink()
    with pytest.raises(DataMissingError, match=r"params: \{modalities: \['audio', 'visual'\]\}"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"))
    with pytest.raises(DataMissingError) as text_only:  # no other modality to fall back on
        build("ict-mmmo", path=str(tmp_path / "mmmo"), modalities=["text"])
    assert "modalities:" not in str(text_only.value).split("fetch ict-mmmo`")[1]
    (tmp_path / "mmmo" / "y_valid.h5").unlink()  # the labels: no subset of modalities does without them
    with pytest.raises(DataMissingError, match="every modality needs y_valid.h5$"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"), modalities=AV)
    # CMU-MOSI's X_*.h5 hold all three modalities: asking for fewer cannot help
    for split in ("train", "valid", "test"):
        write(tmp_path / "mosi" / f"y_{split}.h5", "data", np.zeros(3))
    with pytest.raises(DataMissingError) as mosi:
        build("cmu-mosi", path=str(tmp_path / "mosi"), modalities=["audio"])
    assert "request only the modalities" not in str(mosi.value)
    assert str(mosi.value).endswith("every modality needs X_train.h5, X_valid.h5, X_test.h5")


def test_no_data_at_all_says_how_to_get_it(tmp_path):
    with pytest.raises(DataMissingError, match="mfm-bench fetch youtube"):
        build("youtube")


def test_bad_files_give_clear_errors(tmp_path):
    make_folder(tmp_path / "mmmo")
    write(tmp_path / "mmmo" / "audio_valid.h5", "features", np.zeros((5, 20, 74)))
    with pytest.raises(mfn_h5.MFNFormatError, match=r"audio_valid.h5: no dataset named 'd1'"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"), cache=False)
    write(tmp_path / "mmmo" / "audio_valid.h5", "d1", np.zeros((4, 20, 74)))
    with pytest.raises(mfn_h5.MFNFormatError, match="4 samples but the labels file has 5"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"), cache=False)
    (tmp_path / "mmmo" / "audio_valid.h5").write_bytes(b"not hdf5")
    with pytest.raises(mfn_h5.MFNFormatError, match="cannot be opened as HDF5"):
        build("ict-mmmo", path=str(tmp_path / "mmmo"), cache=False)


def test_second_load_comes_from_the_cache_without_reading_sources(tmp_path, monkeypatch):
    make_folder(tmp_path / "youtube", labels="onehot")
    first = build("youtube", path=str(tmp_path / "youtube"))
    assert first.cache_info["hit"] is False

    def boom(*a, **k):
        raise AssertionError("the source reader was called on a cache hit")

    monkeypatch.setattr(mfn_h5, "read_folder_split", boom)
    second = build("youtube", path=str(tmp_path / "youtube"))
    assert second.cache_info["hit"] is True and second.cache_info["path"] == first.cache_info["path"]
    for s in ("train", "valid", "test"):
        a, b = first.split(s), second.split(s)
        assert a.ids == b.ids and torch.equal(a.target, b.target)
        for m in a.inputs:
            assert torch.equal(a.inputs[m], b.inputs[m]) and torch.equal(a.mask[m], b.mask[m])
    # a different parameter is a different entry, prepared from the sources again
    with pytest.raises(AssertionError, match="source reader"):
        build("youtube", path=str(tmp_path / "youtube"), seq_len=10)


def test_cmu_mosi_combined_layout(tmp_path):
    rng = np.random.default_rng(1)
    raw = {}
    for split, n in (("train", 9), ("valid", 4), ("test", 5)):
        x = rng.normal(size=(n, 20, 325))
        x[:, :3] = 0
        write(tmp_path / "mosi" / f"X_{split}.h5", "data", x)
        write(tmp_path / "mosi" / f"y_{split}.h5", "data", rng.uniform(-3, 3, size=n))
        raw[split] = x
    ds = build("cmu-mosi", path=str(tmp_path / "mosi"), normalise="none")
    assert ds.format == "mfn-h5" and ds.spec.input_dims == {"text": 300, "audio": 5, "visual": 20}
    assert ds.spec.task.kind == "regression" and ds.spec.task.range == (-3.0, 3.0)
    np.testing.assert_allclose(ds.split("test").inputs["visual"].numpy(), raw["test"][:, :, 305:].astype(np.float32))
    assert not ds.split("test").mask["audio"][:, :3].any() and ds.split("test").mask["audio"][:, 3:].all()


# -- the real copies ------------------------------------------------------------------------------------------
@needs_real
def test_real_ict_mmmo_and_youtube_without_text(monkeypatch):
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    with pytest.raises(DataMissingError, match="text_train_emb.h5"):
        build("ict-mmmo")
    mmmo = build("ict-mmmo", modalities=AV)
    assert [len(mmmo.split(s)) for s in ("train", "valid", "test")] == [220, 40, 80]
    assert mmmo.spec.input_dims == {"audio": 74, "visual": 36}
    y = mfn_h5.read_array(REAL / "mmmo" / "y_train.h5")
    assert torch.equal(mmmo.split("train").target, torch.from_numpy((y > 3.5).astype(np.int64)))
    yt = build("youtube", modalities=AV)
    assert [len(yt.split(s)) for s in ("train", "valid", "test")] == [173, 36, 60]
    assert set(yt.split("train").target.tolist()) == {0, 1, 2}


@needs_real
def test_real_youtube_audio_visual_is_empty_in_most_samples_as_documented(monkeypatch):
    # docs/datasets.md: 125/173, 29/36 and 37/60 samples have no acoustic and no visual step in the MFN copy
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    ds = build("youtube", modalities=AV)
    empty = {}
    for split in ("train", "valid", "test"):
        s = ds.split(split)
        none = ~s.mask["audio"].any(1) & ~s.mask["visual"].any(1)
        assert not s.inputs["audio"][none].any() and not s.inputs["visual"][none].any()
        empty[split] = (int(none.sum()), len(none))
    assert empty == {"train": (125, 173), "valid": (29, 36), "test": (37, 60)}
    text = mfn_h5.read_array(REAL / "youtube" / "text_test_emb.h5")
    assert (text != 0).any(-1).any(1).all()  # the words are there


@needs_real
def test_real_cmu_mosi_labels_and_missing_features_are_named(monkeypatch):
    y = {s: mfn_h5.read_array(REAL / "mosi" / f"y_{s}.h5") for s in ("train", "valid", "test")}
    assert [len(v) for v in y.values()] == [1284, 229, 686]
    assert all(np.abs(v).max() <= 3.0 for v in y.values())
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    with pytest.raises(DataMissingError, match="X_train.h5, X_valid.h5, X_test.h5"):
        build("cmu-mosi")


@needs_real
def test_short_training_on_real_ict_mmmo_learns(monkeypatch, one_thread):
    """The core Trainer fits the supervised baseline on the real acoustic + visual data."""
    from mfm_bench.training import TrainConfig, Trainer

    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    ds = build("ict-mmmo", modalities=AV)
    model = get_registry().build("model", "supervised", ds.spec, encoder_params={"hidden": 16})
    result = Trainer(TrainConfig(epochs=6, batch_size=32, lr=3e-3, early_stop=0, device="cpu")).fit(
        model, ds.split("train"), ds.split("valid"), seed=0
    )
    first, last = result.history[0]["train_label"], result.history[-1]["train_label"]
    assert np.isfinite(last) and last < 0.9 * first, (first, last)


@needs_real
def test_runner_on_real_youtube_and_ict_mmmo(tmp_path, monkeypatch, one_thread):
    from mfm_bench.results import ResultStore
    from mfm_bench.runner import run_suite
    from mfm_bench.suite import load_suite

    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    suite = tmp_path / "s.yaml"
    suite.write_text("""name: real-av-tiny
datasets:
  - {name: ict-mmmo, params: {modalities: [audio, visual]}}
  - {name: youtube, params: {modalities: [audio, visual]}}
models: [{name: supervised, label: concat, params: {encoder_params: {hidden: 16}}}]
seeds: [0]
train: {epochs: 2, batch_size: 64, device: cpu}
evaluate: {conditions: [clean, {missing: visual}]}
""")
    counts = run_suite(load_suite(suite), tmp_path / "out", progress=False, log=lambda s: None)
    assert counts == {"finished": 1, "failed": 1, "skipped": 0}
    with ResultStore(tmp_path / "out") as store:
        acc = [m["value"] for m in store.metrics() if m["condition"] == "clean" and m["metric"] == "acc"]
        runs = {r["dataset"]: r for r in store.runs()}
    assert len(acc) == 1 and 0.0 <= acc[0] <= 1.0 and runs["ict-mmmo"]["status"] == "finished"
    # YouTube's audio and visual carry no learnable signal (docs/results.md): no epoch beats the untrained
    # weights on validation, so the run is failed rather than ranked
    assert runs["youtube"]["status"] == "failed" and "did not train" in runs["youtube"]["error"]


def test_normalise_original_scales_visual_by_its_train_max_abs_and_leaves_the_rest_raw(tmp_path):
    raw = make_folder(tmp_path / "mfn-h5" / "mmmo")
    ds = build("ict-mmmo", path=str(tmp_path), normalise="original", cache=False)
    top = np.abs(raw[("train", "visual")]).reshape(-1, raw[("train", "visual")].shape[-1]).max(0)
    top = np.where(top == 0, 1.0, top)
    for split in ("train", "test"):
        got = ds.split(split).inputs
        np.testing.assert_allclose(got["visual"].numpy(), (raw[(split, "visual")] / top).astype(np.float32), rtol=1e-6)
        np.testing.assert_allclose(got["audio"].numpy(), raw[(split, "audio")].astype(np.float32))
    assert float(ds.split("train").inputs["visual"].abs().max()) <= 1.0 + 1e-6


def test_ict_mmmo_threshold_cites_its_source_in_docs_and_plugin():
    """ICT-MMMO's binary label (> 3.5, so 3.5 is negative) cites the original MFM code: repository, commit, file
    and lines, in docs/datasets.md and in the plugin."""
    from mfm_bench.plugins.datasets import ict_mmmo

    cite = "`pliang279/factorized` @ `602b160` `mfm_mmmo.py` L654-655"
    row = next(line for line in (ROOT / "docs" / "datasets.md").read_text().splitlines() if "| `ict-mmmo`" in line)
    assert cite in row and "3.5 is negative" in row and f"> {ict_mmmo.THRESHOLD:g}" in row
    assert "pliang279/factorized @ 602b160, ``mfm_mmmo.py`` L654-655" in " ".join(ict_mmmo.__doc__.split())


@needs_real
def test_real_ict_mmmo_ratings_of_3_5_are_negative(monkeypatch):
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    mmmo = build("ict-mmmo", modalities=AV)
    for split, n in (("train", 2), ("valid", 0), ("test", 1)):
        y = mfn_h5.read_array(REAL / "mmmo" / f"y_{split}.h5").reshape(-1)
        assert int((y == 3.5).sum()) == n
        assert not mmmo.split(split).target[torch.from_numpy(y == 3.5)].any()
