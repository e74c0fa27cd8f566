"""Reading, writing and validating .csd files."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest

from mfm_bench.align import METADATA_KEYS, CompSeq, CSDFormatError, CSDMetadataWarning, csd_entries, read_csd, write_csd
from mfm_bench.align.csd import MMSDK_JOINED_KEY


def _seq():
    rng = np.random.default_rng(0)
    return CompSeq.from_dict(
        "COVAREP",
        {
            "vidA": (np.array([[0.0, 0.5], [0.5, 1.0], [1.0, 1.5]]), rng.standard_normal((3, 4)).astype(np.float32)),
            "vidB": (np.zeros((0, 2)), np.zeros((0, 4), np.float32)),
            "vidC": (np.array([[2.0, 3.0]]), np.array([[np.nan, -np.inf, 1.0, 2.0]], np.float32)),
        },
        {"dataset name": "toy", "dimension names": ["a", "b", "c", "d"]},
    )


def _raw(path, root="anything", videos=None, metadata=True):
    with h5py.File(path, "w") as h5:
        g = h5.create_group(root)
        d = g.create_group("data")
        for vid, (iv, ft) in (videos or {}).items():
            v = d.create_group(vid)
            v.create_dataset("intervals", data=iv)
            v.create_dataset("features", data=ft)
        if metadata:
            m = g.create_group("metadata")
            for k in METADATA_KEYS:
                ds = m.create_dataset(k, (1,), dtype=h5py.string_dtype())
                ds[0] = json.dumps(root if k == "root name" else "x")


def test_round_trip(tmp_path):
    seq = _seq()
    path = write_csd(tmp_path / "a.csd", seq)
    back = read_csd(path)
    assert back.name == "COVAREP"
    assert list(back.keys()) == ["vidA", "vidB", "vidC"]
    for k in seq:
        np.testing.assert_array_equal(back[k].intervals, seq[k].intervals)
        np.testing.assert_array_equal(back[k].features, seq[k].features)
    assert back.features.dtype == np.float32
    assert back.metadata["dataset name"] == "toy"
    assert back.metadata["dimension names"] == ["a", "b", "c", "d"]
    assert back.metadata["root name"] == "COVAREP"
    assert csd_entries(path) == ["vidA", "vidB", "vidC"]
    sub = read_csd(path, videos={"vidC"})
    assert list(sub.keys()) == ["vidC"] and sub.n_rows == 1


def test_written_layout_is_what_mmsdk_reads(tmp_path):
    path = write_csd(tmp_path / "b.csd", _seq())
    with h5py.File(path, "r") as h5:
        assert list(h5.keys()) == ["COVAREP"]
        root = h5["COVAREP"]
        assert set(root.keys()) == {"data", "metadata"}
        assert root["data/vidA/intervals"].shape == (3, 2)
        assert root["data/vidA/features"].shape == (3, 4)
        keys = set(root["metadata"].keys())
        # every key of mmsdk's template, including the one its missing comma creates
        assert set(METADATA_KEYS) <= keys and MMSDK_JOINED_KEY in keys
        for k in keys:  # mmsdk reads metadata_[key][0] and json.loads it
            json.loads(root["metadata"][k][0])
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away


def test_reader_takes_first_group_whatever_its_name(tmp_path):
    p = tmp_path / "c.csd"
    _raw(p, root="Some Odd Name", videos={"v": (np.zeros((2, 2)), np.ones((2, 3)))})
    seq = read_csd(p)
    assert seq.name == "Some Odd Name"
    assert seq.feature_shape == (3,)


@pytest.mark.parametrize(
    "iv_shape, ft_shape, fragment",
    [
        ((3,), (3, 2), "intervals must be 2-D"),
        ((3, 2), (3,), "at least 2-D"),
        ((3, 2), (4, 2), "first dimensions must be equal"),
    ],
)
def test_validation_names_file_and_video(tmp_path, iv_shape, ft_shape, fragment):
    p = tmp_path / "bad.csd"
    _raw(
        p, videos={"good": (np.zeros((1, 2)), np.zeros((1, 2))), "broken_vid": (np.zeros(iv_shape), np.zeros(ft_shape))}
    )
    with pytest.raises(CSDFormatError) as e:
        read_csd(p)
    msg = str(e.value)
    assert str(p) in msg and "broken_vid" in msg and fragment in msg


def test_inconsistent_feature_width_is_an_error(tmp_path):
    p = tmp_path / "w.csd"
    _raw(p, videos={"a": (np.zeros((1, 2)), np.zeros((1, 2))), "b": (np.zeros((1, 2)), np.zeros((1, 3)))})
    with pytest.raises(CSDFormatError, match="'b'"):
        read_csd(p)


def test_missing_metadata_is_a_warning(tmp_path):
    p = tmp_path / "m.csd"
    _raw(p, videos={"a": (np.zeros((1, 2)), np.zeros((1, 2)))}, metadata=False)
    with pytest.warns(CSDMetadataWarning, match="no metadata"):
        seq = read_csd(p)
    assert seq.n_rows == 1
    _raw(p, videos={"a": (np.zeros((1, 2)), np.zeros((1, 2)))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_csd(p)  # complete metadata: no warning


def test_plain_string_metadata_and_not_hdf5(tmp_path):
    p = tmp_path / "s.csd"
    _raw(p, videos={"a": (np.zeros((1, 2)), np.zeros((1, 2)))})
    with h5py.File(p, "a") as h5:
        del h5["anything/metadata/creator"]
        h5["anything/metadata"].create_dataset("creator", data=np.array([b"Jane Doe"]))
    assert read_csd(p).metadata["creator"] == "Jane Doe"
    junk = tmp_path / "junk.csd"
    junk.write_text("not hdf5")
    with pytest.raises(CSDFormatError, match="junk.csd"):
        read_csd(junk)
    with pytest.raises(FileNotFoundError, match="nope.csd"):
        read_csd(tmp_path / "nope.csd")


def test_compseq_mapping_and_select():
    seq = _seq()
    assert len(seq) == 3 and "vidA" in seq and "zzz" not in seq
    iv, ft = seq["vidA"]
    assert iv.shape == (3, 2) and ft.shape == (3, 4)
    sub = seq.select([2, 0])
    assert list(sub.keys()) == ["vidC", "vidA"]
    np.testing.assert_array_equal(sub["vidA"].features, seq["vidA"].features)
    assert sub.n_rows == 4
    with pytest.raises(CSDFormatError, match="'b'"):
        CompSeq.from_dict("x", {"a": (np.zeros((1, 2)), np.zeros((1, 2))), "b": (np.zeros((1, 2)), np.zeros(1))})


# mmsdk's metadata template as its validator sees it: the missing comma joins two names
_MMSDK_TEMPLATE = [
    "root name",
    "computational sequence description",
    MMSDK_JOINED_KEY,
    "alignment compatible",
    "dataset name",
    "dataset version",
    "creator",
    "contact",
    "featureset bib citation",
    "dataset bib citation",
]


def test_aligned_output_passes_mmsdk_style_checks(tmp_path):
    from mfm_bench.align import align

    seq = _seq()
    words = CompSeq.from_dict(
        "words",
        {
            "vidA": (np.array([[0.0, 0.7], [0.7, 1.4]]), np.ones((2, 3))),
            "vidC": (np.array([[2.0, 2.5]]), np.ones((1, 3))),
        },
    )
    out = align("words", {"words": words, "COVAREP": seq})["COVAREP"]
    path = write_csd(tmp_path / "aligned.csd", out)
    with h5py.File(path, "r") as h5:
        root = h5[list(h5.keys())[0]]
        data = dict(root["data"])
        metadata = {k: json.loads(root["metadata"][k][0]) for k in root["metadata"].keys()}
        assert all(k in metadata for k in _MMSDK_TEMPLATE)
        assert metadata["root name"] == "COVAREP" == list(h5.keys())[0]
        assert sorted(data) == ["vidA[0]", "vidA[1]", "vidC[0]"]
        for g in data.values():
            assert len(g["intervals"].shape) == 2 and len(g["features"].shape) >= 2
            assert g["intervals"].shape[0] == g["features"].shape[0] == 1


def test_entry_without_features_dataset(tmp_path):
    p = tmp_path / "nofeat.csd"
    _raw(p, videos={"ok": (np.zeros((1, 2)), np.zeros((1, 2)))})
    with h5py.File(p, "a") as h5:
        h5["anything/data"].create_group("half").create_dataset("intervals", data=np.zeros((1, 2)))
        h5["anything/data"].create_dataset("flat", data=np.zeros((1, 2)))
    with pytest.raises(CSDFormatError, match=r"nofeat\.csd: video 'flat'"):
        read_csd(p)
    with pytest.raises(CSDFormatError, match=r"video 'half' must be a group holding"):
        read_csd(p, videos=["half", "ok"])


def _big_seq(n_videos=7, seed=4) -> CompSeq:
    rng = np.random.default_rng(seed)
    data = {}
    for v in range(n_videos):
        rows = int(rng.integers(0, 40))  # an empty entry or two among them
        iv = np.sort(rng.random((rows, 2)), axis=1) * 10
        data[f"v{v}"] = (iv, rng.standard_normal((rows, 3)).astype(np.float32))
    return CompSeq.from_dict("covarep", data, {})


def test_a_large_file_read_in_two_processes_gives_the_same_arrays(tmp_path, monkeypatch):
    """Above SPLIT_READ_BYTES forked children read all but the first part of the rows into shared memory (one part
    per usable core); lowered to 0 here, the result equals a read in one process, the selection of videos
    included; when a child fails (here: fork itself fails) this process reads its entries."""
    import os

    from mfm_bench.align import csd

    path = write_csd(tmp_path / "a.csd", _big_seq(), compression="gzip")
    monkeypatch.setenv("MFM_BENCH_DIRECT_CHUNKS", "0")  # the forked read is HDF5's path (chunks.py reads in threads)
    monkeypatch.setenv("MFM_BENCH_SPLIT_READ", "0")
    one = read_csd(path)
    some = read_csd(path, videos={"v1", "v4", "v6"})
    monkeypatch.setenv("MFM_BENCH_SPLIT_READ", "1")
    monkeypatch.setattr(csd, "SPLIT_READ_BYTES", 0)
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    here = []  # entries this process read itself: the children's parts only if a child failed
    real_read = csd._read_entries
    monkeypatch.setattr(csd, "_read_entries", lambda idx, *a: here.append(list(idx)) or real_read(idx, *a))
    for cores in (2, 3):  # two and three parts
        monkeypatch.setattr("mfm_bench.executors.base.usable_cores", lambda c=cores: c)
        for expected, got in ((one, read_csd(path)), (some, read_csd(path, videos={"v1", "v4", "v6"}))):
            assert got.keys_list == expected.keys_list
            np.testing.assert_array_equal(got.offsets, expected.offsets)
            np.testing.assert_array_equal(got.features, expected.features)
            np.testing.assert_array_equal(got.intervals, expected.intervals)
    assert len(forks) == 2 * 1 + 2 * 2  # every read was split, into one child per part after the first
    assert len(here) == 4 and all(part[0] == 0 for part in here if part)  # only part 0, never a child's part

    def no_fork():
        raise OSError("fork failed")

    monkeypatch.setattr(os, "fork", no_fork)
    np.testing.assert_array_equal(read_csd(path).features, one.features)
