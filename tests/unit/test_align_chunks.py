"""The direct chunk reader (mfm_bench.align.chunks): every layout it accepts reads to the very bytes HDF5 gives,
and every layout it does not accept, or chunk it cannot inflate, is left to HDF5."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from mfm_bench.align import CSDFormatError, read_csd
from mfm_bench.align import chunks as chunks_mod
from mfm_bench.align.csd import METADATA_KEYS, MMSDK_JOINED_KEY, CSDReader


def _write(path, videos, *, userblock=0, **dataset_kw):
    """A .csd file written with h5py directly, ``dataset_kw`` given to every features dataset."""
    with h5py.File(path, "w", userblock_size=userblock) as h5:
        data = h5.create_group("seq/data")
        for name, (iv, ft) in videos.items():
            g = data.create_group(name)
            g.create_dataset("intervals", data=iv, chunks=(7, 2), maxshape=(None, 2), compression="gzip")
            kw = dict(dataset_kw)
            if isinstance(kw.get("chunks"), tuple):  # rows may grow past the data (an empty video too)
                kw["chunks"] = (kw["chunks"][0], *(min(c, w) for c, w in zip(kw["chunks"][1:], ft.shape[1:])))
                kw["maxshape"] = (None, *ft.shape[1:])
            g.create_dataset("features", data=ft, **kw)
        meta = h5.create_group("seq/metadata")
        for key in (*METADATA_KEYS, MMSDK_JOINED_KEY):
            meta.create_dataset(key, data=np.array(["seq"], dtype=h5py.string_dtype()))
    return path


def _videos(rng, width=(9,), dtype=np.float32, n=4, rows=(0, 60)):
    out = {}
    for v in range(n):
        k = int(rng.integers(*rows))
        iv = np.sort(rng.random((k, 2)), axis=1) * 10
        ft = (rng.standard_normal((k, *width)) * 100).astype(dtype)
        if k and np.issubdtype(dtype, np.floating):
            ft.reshape(k, -1)[0, 0] = np.nan  # NaN rows, as COVAREP has
        out[f"v{v}"] = (iv, ft)
    return out


def _both(monkeypatch, path, *, direct=True, **kw):
    """The file read with the direct reader on, then off. ``direct``: whether the first read must have gone
    through chunks.read_chunks with no chunk left to HDF5 (True), or never reached it (False)."""
    calls = []
    real = chunks_mod.read_chunks
    monkeypatch.setattr(chunks_mod, "read_chunks", lambda *a, **k: (lambda f: calls.append(f) or f)(real(*a, **k)))
    monkeypatch.setenv("MFM_BENCH_DIRECT_CHUNKS", "1")
    first = read_csd(path, **kw)
    monkeypatch.setattr(chunks_mod, "read_chunks", real)
    assert calls and not any(calls) if direct else not calls, calls
    monkeypatch.setenv("MFM_BENCH_DIRECT_CHUNKS", "0")
    hdf5 = read_csd(path, **kw)
    return first, hdf5


def _same(a, b):
    assert a.keys_list == b.keys_list
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert a.features.dtype == b.features.dtype and a.intervals.dtype == b.intervals.dtype
    assert a.features.tobytes() == b.features.tobytes()  # NaN payloads included
    assert a.intervals.tobytes() == b.intervals.tobytes()


LAYOUTS = {
    "gzip, edge chunks both ways": dict(chunks=(8, 4), compression="gzip"),
    "gzip level 9 with shuffle": dict(chunks=(5, 3), compression="gzip", compression_opts=9, shuffle=True),
    "shuffle only": dict(chunks=(16, 9), shuffle=True),
    "chunked, no filter": dict(chunks=(3, 2)),
    "h5py's own chunk guess": dict(compression="gzip"),
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
@pytest.mark.parametrize("threads", [1, 3])
def test_the_direct_read_gives_hdf5s_bytes(tmp_path, monkeypatch, layout, threads):
    monkeypatch.setattr(chunks_mod, "THREADED_BYTES", 0 if threads > 1 else 1 << 60)
    monkeypatch.setattr("mfm_bench.executors.base.usable_cores", lambda: threads)
    path = _write(tmp_path / "a.csd", _videos(np.random.default_rng(1)), **LAYOUTS[layout])
    used = []
    real = chunks_mod.read_chunks
    monkeypatch.setattr(chunks_mod, "read_chunks", lambda *a, **k: used.append(1) or real(*a, **k))
    direct, hdf5 = _both(monkeypatch, path)
    assert used, "the direct reader was not used"
    _same(direct, hdf5)
    direct, hdf5 = _both(monkeypatch, path, videos={"v3", "v1"})
    _same(direct, hdf5)


@pytest.mark.parametrize(
    "dtype,width",
    [(">f4", (6,)), ("<i2", (5,)), (">u8", (3,)), ("<f8", (2, 3, 2))],
    ids=["big-endian float", "int16", "big-endian uint64", "3-d features"],
)
def test_byte_orders_integers_and_more_dimensions(tmp_path, monkeypatch, dtype, width):
    chunk = (7, *[max(1, w - 1) for w in width])
    path = _write(tmp_path / "a.csd", _videos(np.random.default_rng(2), width, dtype), chunks=chunk, compression="gzip")
    _same(*_both(monkeypatch, path))


def test_videos_of_different_dtypes_are_cast_alike(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    videos = _videos(rng, dtype=np.float32, n=2)
    videos.update({f"w{k}": v for k, v in _videos(rng, dtype=np.float64, n=2).items()})
    path = _write(tmp_path / "a.csd", videos, chunks=(4, 4), compression="gzip")
    direct, hdf5 = _both(monkeypatch, path)
    assert direct.features.dtype == np.float64
    _same(direct, hdf5)


def test_a_file_with_a_user_block_is_read_by_hdf5(tmp_path, monkeypatch):
    """Whether a chunk's address counts the user block is not checked for every HDF5 version, and an unfiltered
    chunk read from the wrong place would not fail, so such files go to HDF5."""
    for kw in (dict(chunks=(8, 4), compression="gzip"), dict(chunks=(8, 4))):
        path = _write(tmp_path / "a.csd", _videos(np.random.default_rng(4)), userblock=1024, **kw)
        _same(*_both(monkeypatch, path, direct=False))


def test_layouts_it_cannot_read_go_to_hdf5(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    cases = {
        "contiguous": dict(),
        "lzf": dict(chunks=(8, 4), compression="lzf"),
        "fletcher32": dict(chunks=(8, 4), compression="gzip", fletcher32=True),
    }
    for name, kw in cases.items():
        path = _write(tmp_path / f"{name}.csd", _videos(rng, n=2, rows=(5, 30)), **kw)
        with CSDReader(path) as r:
            assert chunks_mod.plan(r.ftds[0]) is None, name
        _same(*_both(monkeypatch, path, direct=False))
    # a dataset with chunks never written (read as the fill value)
    path = tmp_path / "sparse.csd"
    _write(path, {"v0": (np.zeros((20, 2)), np.zeros((20, 4), np.float32))}, chunks=(5, 4), compression="gzip")
    with h5py.File(path, "r+") as h5:
        del h5["seq/data/v0/features"]
        ds = h5.create_dataset("seq/data/v0/features", shape=(20, 4), dtype="f4", chunks=(5, 4), fillvalue=7.0)
        ds[0:5] = 1.0
    with CSDReader(path) as r:
        assert chunks_mod.plan(r.ftds[0]) is None
    direct, hdf5 = _both(monkeypatch, path, direct=False)
    _same(direct, hdf5)
    assert direct.features[10, 0] == 7.0


def test_a_corrupt_chunk_is_read_by_hdf5_and_its_error_names_the_file(tmp_path, monkeypatch):
    path = _write(
        tmp_path / "a.csd", _videos(np.random.default_rng(6), n=3, rows=(30, 40)), chunks=(8, 4), compression="gzip"
    )
    with CSDReader(path) as r:
        plan = chunks_mod.plan(r.ftds[1])
    with open(path, "r+b") as f:  # overwrite the middle of one chunk of video v1
        f.seek(plan.addresses[0] + plan.sizes[0] // 2)
        f.write(b"\xff" * 8)
    monkeypatch.setenv("MFM_BENCH_DIRECT_CHUNKS", "1")
    fell_back = []
    real = chunks_mod.read_chunks
    monkeypatch.setattr(chunks_mod, "read_chunks", lambda *a, **k: (lambda f: fell_back.extend(f) or f)(real(*a, **k)))
    with pytest.raises(CSDFormatError, match=r"a\.csd: /seq/data/v1/features cannot be read .*damaged or truncated"):
        read_csd(path)  # HDF5 fails on the same chunk, and the message names the file and the dataset
    assert fell_back == [3], "only the job of v1's features failed (jobs: v0 iv, v0 ft, v1 iv, v1 ft, ...)"


def test_reading_batches_into_one_buffer(tmp_path, monkeypatch):
    path = _write(
        tmp_path / "a.csd", _videos(np.random.default_rng(7), n=6, rows=(1, 50)), chunks=(8, 4), compression="gzip"
    )
    whole = read_csd(path)
    with CSDReader(path) as r:
        buf = (np.full((200, 2), -1.0), np.full((200, 9), -1.0, np.float32))
        for batch in ([4, 0], [5], [1, 2, 3]):
            offsets, iv, ft = r.read(batch, buffers=buf)
            assert iv.base is not None and np.shares_memory(ft, buf[1])
            expect = whole.select(batch)
            np.testing.assert_array_equal(offsets, expect.offsets)
            assert ft.tobytes() == expect.features.tobytes() and iv.tobytes() == expect.intervals.tobytes()


def test_an_unexpected_error_in_a_read_thread_reaches_the_caller(tmp_path, monkeypatch):
    """A thread that fails for another reason than a bad chunk (here a MemoryError) must not leave rows unread
    behind a normal return: the error comes out of read_csd."""
    monkeypatch.setattr(chunks_mod, "THREADED_BYTES", 0)
    monkeypatch.setattr("mfm_bench.executors.base.usable_cores", lambda: 2)
    path = _write(
        tmp_path / "a.csd", _videos(np.random.default_rng(8), n=4, rows=(30, 40)), chunks=(4, 4), compression="gzip"
    )
    real = chunks_mod._read_range
    main = threading.main_thread()

    def flaky(view, p, k0, k1, out):
        if threading.current_thread() is not main:
            raise MemoryError("no memory in a read thread")
        real(view, p, k0, k1, out)

    monkeypatch.setattr(chunks_mod, "_read_range", flaky)
    monkeypatch.setenv("MFM_BENCH_DIRECT_CHUNKS", "1")
    with pytest.raises(MemoryError, match="read thread"):
        read_csd(path)
