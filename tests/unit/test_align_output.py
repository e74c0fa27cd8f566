"""`align` output: the fast .csd writer gives what the previous high-level writer gave, the .npz form round-trips,
files are read ahead in worker processes with the same results, and mmsdk itself reads our files (optional peer)."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from mfm_bench.align import (
    CompSeq,
    CSDMetadataWarning,
    align,
    complete_metadata,
    impute,
    oracle,
    prepare_word_level,
    read_csd,
    read_npz,
    write_csd,
    write_npz,
)
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences, standard_folds
from mfm_bench.cli import main


def _contents(path) -> dict:
    """Every dataset of an HDF5 file: name -> (dtype, shape, values), walked with h5py's high-level API."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = (obj.dtype, obj.shape, obj[()])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


@pytest.fixture(scope="module")
def raw():
    return make_sequences(SyntheticConfig.tiny(n_videos=8, seed=11))


@pytest.fixture(scope="module")
def files(raw, tmp_path_factory):
    d = tmp_path_factory.mktemp("csd")
    return {name: str(write_csd(d / f"{name}.csd", s)) for name, s in raw.items()}


@pytest.fixture(scope="module")
def aligned(raw):
    return impute("words", align("words", {n: raw[n] for n in ("words", "acoustic", "visual")}))


@pytest.mark.parametrize("name", ["words", "acoustic", "visual"])
def test_fast_writer_equals_the_old_writer(aligned, tmp_path, name):
    seq = aligned[name]
    oracle.write_csd(tmp_path / "old.csd", seq)
    write_csd(tmp_path / "new.csd", seq)
    old, new = _contents(tmp_path / "old.csd"), _contents(tmp_path / "new.csd")
    assert list(old) == list(new) and len(old) == 2 * len(seq) + len(complete_metadata(seq))
    for key, (dtype, shape, values) in old.items():
        assert new[key][:2] == (dtype, shape), key
        np.testing.assert_array_equal(new[key][2], values, err_msg=key)
    # the newest file format (superblock version 3, compact groups) rather than the default (version 0)
    assert (tmp_path / "new.csd").read_bytes()[8] >= 2 and (tmp_path / "old.csd").read_bytes()[8] == 0


def test_fast_writer_keeps_empty_entries_tokens_and_compression(tmp_path):
    seq = CompSeq.from_dict(
        "t",
        {
            "a": (np.zeros((0, 2)), np.zeros((0, 3), np.float32)),
            "b": (np.array([[0.0, 1.0]]), np.ones((1, 3), np.float32)),
        },
    )
    for kw in ({}, {"compression": "gzip"}):
        back = read_csd(write_csd(tmp_path / "e.csd", seq, **kw))
        assert back["a"].features.shape == (0, 3) and back["b"].features.dtype == np.float32
    tokens = CompSeq.from_dict("w", {"v": (np.array([[0.0, 1.0]]), np.array([["hi"]], dtype=object))})
    assert read_csd(write_csd(tmp_path / "w.csd", tokens))["v"].features[0, 0] in (b"hi", "hi")


def test_npz_format_round_trips_and_the_cli_writes_it(aligned, raw, files, tmp_path):
    back = read_npz(write_npz(tmp_path / "a.npz", aligned["acoustic"]))
    assert back.keys_list == aligned["acoustic"].keys_list and back.name == "acoustic"
    np.testing.assert_array_equal(back.features, aligned["acoustic"].features)
    np.testing.assert_array_equal(back.offsets, aligned["acoustic"].offsets)
    args = [
        "align",
        "--reference",
        "words",
        "--out",
        str(tmp_path / "al"),
        "--no-progress",
        "--impute",
        "--format",
        "npz",
    ] + [f"{n}={files[n]}" for n in ("words", "acoustic", "visual")]
    assert main(args) == 0
    for n in ("words", "acoustic", "visual"):
        got = read_csd(tmp_path / "al" / f"{n}.npz")  # read_csd reads both forms
        assert got.keys_list == aligned[n].keys_list
        np.testing.assert_array_equal(got.features, aligned[n].features)
        np.testing.assert_array_equal(got.intervals, aligned[n].intervals)


def test_parallel_read_gives_the_single_process_result(raw, files):
    folds = standard_folds(list(raw["labels"].keys()), seed=3)
    one = prepare_word_level(files, "words", "labels", 5, folds, workers=1)
    two = prepare_word_level(files, "words", "labels", 5, folds, workers=2)
    for fold in folds:
        assert one[fold].keys() == two[fold].keys()
        for k in one[fold]:
            np.testing.assert_array_equal(one[fold][k], two[fold][k])


def test_warnings_from_worker_processes_reach_the_caller(raw, tmp_path):
    paths = {}
    for n in ("words", "acoustic", "labels"):
        paths[n] = str(write_csd(tmp_path / f"{n}.csd", raw[n]))
    with h5py.File(paths["acoustic"], "a") as f:
        del f["acoustic/metadata/creator"]
    folds = standard_folds(list(raw["labels"].keys()), seed=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_word_level(paths, "words", "labels", 5, folds, workers=2)
    assert any(issubclass(w.category, CSDMetadataWarning) and "creator" in str(w.message) for w in caught)


def test_mmsdk_reads_what_we_write(aligned, tmp_path):
    """The CMU-MultimodalSDK (`pip install cmu-multimodal-sdk`), when installed, opens our files."""
    mmdatasdk = pytest.importorskip("mmsdk.mmdatasdk", reason="cmu-multimodal-sdk is not installed (optional peer)")
    path = write_csd(tmp_path / "acoustic.csd", aligned["acoustic"])
    seq = mmdatasdk.computational_sequence(str(path))
    assert set(seq.data.keys()) == set(aligned["acoustic"].keys_list)
    key = aligned["acoustic"].keys_list[0]
    np.testing.assert_array_equal(seq.data[key]["features"][()], aligned["acoustic"][key].features)


def test_mmsdk_aligns_our_files_as_we_do(raw, files, monkeypatch):
    """The SDK's own align (average collapse) on generated .csd files gives our entries, intervals and features."""
    mmdatasdk = pytest.importorskip("mmsdk.mmdatasdk", reason="cmu-multimodal-sdk is not installed (optional peer)")
    from mmsdk.mmdatasdk.dataset import dataset as sdk_dataset

    # the PyPI copy's epsilon is 10e-4; the CMU-MultimodalSDK's own, and ours (docs/align.md), is 10e-6
    monkeypatch.setattr(sdk_dataset, "epsilon", 10e-6)
    names = ("words", "acoustic", "visual")
    sdk = mmdatasdk.mmdataset({n: files[n] for n in names})
    sdk.align("words", collapse_functions=[lambda intervals, features: np.average(features, axis=0)])
    ours = align("words", {n: raw[n] for n in names})
    for n in names:
        theirs = sdk[n].data
        assert sorted(theirs) == sorted(ours[n].keys_list), n
        assert len(theirs) > 0
        for key in ours[n].keys_list:
            np.testing.assert_allclose(ours[n][key].intervals, theirs[key]["intervals"], err_msg=f"{n} {key}")
            np.testing.assert_allclose(ours[n][key].features, theirs[key]["features"], rtol=1e-6, err_msg=f"{n} {key}")


def test_read_workers_default_and_environment(monkeypatch) -> None:
    from mfm_bench.align.pipeline import read_workers

    monkeypatch.delenv("MFM_BENCH_READ_WORKERS", raising=False)
    assert read_workers() == 1  # in this process: measured faster than workers on 2 cores
    monkeypatch.setenv("MFM_BENCH_READ_WORKERS", "3")
    assert read_workers() == 3
    monkeypatch.setenv("MFM_BENCH_READ_WORKERS", "two")
    with pytest.raises(ValueError, match="MFM_BENCH_READ_WORKERS must be a whole number"):
        read_workers()


# -- writing in background processes ----------------------------------------------------------------------------
def test_background_writes_give_the_same_bytes_as_writing_here(raw, files, tmp_path):
    """`align` writes each file in a forked child by default; the files are byte for byte those written in this
    process (no timestamps: the same sequence gives the same file)."""
    base = ["align", "--reference", "words", "--no-progress", "--impute"]
    base += [f"{n}={files[n]}" for n in ("words", "acoustic", "visual")]
    assert main([*base, "--out", str(tmp_path / "here"), "--write-workers", "0"]) == 0
    assert main([*base, "--out", str(tmp_path / "bg"), "--write-workers", "2"]) == 0
    for n in ("words", "acoustic", "visual"):
        assert (tmp_path / "here" / f"{n}.csd").read_bytes() == (tmp_path / "bg" / f"{n}.csd").read_bytes()
    # nothing left behind but the files and the list of what align wrote there (no temporary file)
    written = [".mfm-bench-align.json", "acoustic.csd", "visual.csd", "words.csd"]
    assert sorted(p.name for p in (tmp_path / "bg").iterdir()) == written


def _fail_on(path, seq, **kw):
    if seq.name == "acoustic":
        raise OSError(f"disk full while writing {path}")
    return write_csd(path, seq, **kw)


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_failed_background_write_names_the_file_and_keeps_the_others(aligned, tmp_path, workers):
    from mfm_bench.align.output import BackgroundWriters, WriteError

    expected = (OSError, WriteError) if workers == 0 else WriteError
    with pytest.raises(expected, match="disk full") as caught:
        with BackgroundWriters(workers) as writers:
            for n in ("words", "acoustic", "visual"):
                writers.submit(n, _fail_on, tmp_path / f"{n}.csd", aligned[n])
    if workers:
        assert "writing acoustic failed: OSError" in str(caught.value)
    assert (tmp_path / "words.csd").is_file() and not (tmp_path / "acoustic.csd").exists()
    assert set(read_csd(tmp_path / "words.csd").keys_list) == set(aligned["words"].keys_list)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_a_killed_writer_is_reported(aligned, tmp_path):
    import os
    import signal

    from mfm_bench.align.output import BackgroundWriters, WriteError

    def die(path, seq):
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(WriteError, match=r"writing words failed: .*exit code -9"):
        with BackgroundWriters(1) as writers:
            writers.submit("words", die, tmp_path / "words.csd", aligned["words"])


def test_direct_hdf5_calls_write_what_h5pys_low_level_calls_write(aligned, tmp_path, monkeypatch):
    """Where the HDF5 library h5py loaded can be bound directly, the entry loop calls it without h5py's
    wrappers; the file holds the same datasets, values and layouts as through h5py's low-level calls."""
    from mfm_bench.align import output

    assert output._hdf5_c_api() is not None  # Linux with h5py's own libhdf5: the direct path is taken here
    for name in ("acoustic", "visual"):
        monkeypatch.setenv("MFM_BENCH_HDF5_CAPI", "1")
        direct = _contents(write_csd(tmp_path / f"{name}-c.csd", aligned[name]))
        monkeypatch.setenv("MFM_BENCH_HDF5_CAPI", "0")
        wrapped = _contents(write_csd(tmp_path / f"{name}-h5py.csd", aligned[name]))
        assert direct.keys() == wrapped.keys() and len(direct) > 10
        for k in direct:
            assert direct[k][:2] == wrapped[k][:2], k
            np.testing.assert_array_equal(direct[k][2], wrapped[k][2])
