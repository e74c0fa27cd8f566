"""Reading HDF5 chunked datasets without HDF5's filter pipeline: the chunks are located once through HDF5
(``H5Dchunk_iter``), then inflated and placed by threads of this process.

h5py holds one lock for every HDF5 call, and HDF5 inflates, unshuffles and scatters each chunk inside that call,
so one process reads on one core however many threads it has. The CMU .csd files are gzip-compressed in small
chunks (a CMU-MOSI-sized COVAREP file: 22,000 chunks of 30 KB), and HDF5 spends about as long per chunk on
locating, copying and scattering it as on inflating it. Here the file is mapped into memory, each chunk's bytes are
inflated outside the GIL, unshuffled with numpy and copied into their place in the output array, by one thread per
usable core. On the 2-core machine of docs/performance.md that read a
CMU-MOSI-sized COVAREP file in 1.0 to 1.1 s, against 4.3 s through HDF5 in one process (docs/align.md).

ISA-L's inflate (python-isal, a dependency) does the inflating: the same bytes as zlib, about 1.6 times faster on
that file. Where isal is missing, :func:`zlib.decompress` does it.

Only what this module can read exactly is read here: internally stored chunked datasets of plain numbers (integers
and floats, either byte order) whose filters are gzip (deflate) and optionally shuffle, every chunk allocated, in
files without a user block. Any
other dataset, and any chunk that does not inflate to its full size, is left to HDF5 (:func:`plan` returns None, or
:func:`read_chunks` returns the datasets that failed), so the result never differs from h5py's.
``MFM_BENCH_DIRECT_CHUNKS=0`` turns this off.
"""

from __future__ import annotations

import mmap
import os
import threading
import zlib
from typing import Any, NamedTuple

import numpy as np

FILTER_DEFLATE = 1  # H5Z_FILTER_DEFLATE
FILTER_SHUFFLE = 2  # H5Z_FILTER_SHUFFLE
#: below this many stored bytes a read is inflated in the calling thread only. Our choice, not a measured
#: break-even: starting and joining a thread costs tens of microseconds, inflating 4 MiB about 10 ms here
THREADED_BYTES = 4 * 1024 * 1024


def _inflater():
    try:
        from isal import isal_zlib

        return isal_zlib.decompress, isal_zlib.error
    except ImportError:
        return zlib.decompress, zlib.error


INFLATE, INFLATE_ERROR = _inflater()


def enabled() -> bool:
    return os.environ.get("MFM_BENCH_DIRECT_CHUNKS", "1") != "0"


class Plan(NamedTuple):
    """Where one dataset's chunks lie in the file, and what undoes its filters."""

    chunk: tuple[int, ...]
    dtype: np.dtype  # as stored in the file
    shuffle: bool
    deflate: bool
    offsets: list[tuple[int, ...]]  # each chunk's first element
    addresses: list[int]  # each chunk's byte offset in the file
    sizes: list[int]  # each chunk's stored size
    masks: list[int]  # each chunk's filter mask (bit i set: filter i was skipped for that chunk)

    @property
    def stored(self) -> int:
        return sum(self.sizes)


def plan(dsid: Any) -> Plan | None:
    """The chunk plan of an h5py ``DatasetID``, or None when HDF5 must read it (see the module docstring). The
    addresses are HDF5's (``H5Dchunk_iter``), offsets from the start of a file without a user block."""
    from h5py import h5d

    try:
        dcpl = dsid.get_create_plist()
        if dcpl.get_layout() != h5d.CHUNKED or dcpl.get_external_count() != 0:
            return None
        dtype = np.dtype(dsid.dtype)
        if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
            return None
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        if filters not in ([], [FILTER_DEFLATE], [FILTER_SHUFFLE, FILTER_DEFLATE], [FILTER_SHUFFLE]):
            return None
        chunk = tuple(int(c) for c in dcpl.get_chunk())
        shape = tuple(int(s) for s in dsid.shape)
        if len(chunk) != len(shape):
            return None
        offsets: list[tuple[int, ...]] = []
        addresses: list[int] = []
        sizes: list[int] = []
        masks: list[int] = []

        def found(info) -> None:
            offsets.append(tuple(int(o) for o in info.chunk_offset))
            addresses.append(int(info.byte_offset))
            sizes.append(int(info.size))
            masks.append(int(info.filter_mask))

        dsid.chunk_iter(found)
    except (AttributeError, TypeError, ValueError, RuntimeError, OSError):  # an older h5py/HDF5, an odd file
        return None
    expected = 1
    for s, c in zip(shape, chunk):
        expected *= -(-s // c)
    if len(offsets) != expected:  # unallocated chunks read as the fill value: HDF5 knows it
        return None
    return Plan(chunk, dtype, FILTER_SHUFFLE in filters, FILTER_DEFLATE in filters, offsets, addresses, sizes, masks)


def _read_one(view: memoryview, p: Plan, k: int, out: np.ndarray) -> None:
    nbytes = p.dtype.itemsize
    for c in p.chunk:
        nbytes *= c
    raw: Any = view[p.addresses[k] : p.addresses[k] + p.sizes[k]]
    # filters are undone in reverse pipeline order; bit i of the mask says filter i was skipped for this chunk
    mask = p.masks[k]
    if p.deflate and not mask >> (1 if p.shuffle else 0) & 1:
        raw = INFLATE(raw, 15, nbytes)
    if len(raw) != nbytes:
        raise ValueError(f"chunk {k} holds {len(raw)} bytes, not {nbytes}")
    if p.shuffle and not mask & 1:
        size = p.dtype.itemsize
        raw = np.frombuffer(raw, np.uint8).reshape(size, nbytes // size).T.copy()
    a = np.frombuffer(raw, p.dtype).reshape(p.chunk)
    dst = tuple(slice(o, min(o + c, s)) for o, c, s in zip(p.offsets[k], p.chunk, out.shape))
    src = tuple(slice(0, d.stop - d.start) for d in dst)
    to, fro = out[dst], a[src]
    if to.dtype == fro.dtype and to.ndim == 2 and to.strides[1] == to.itemsize and to.size:
        # each row of the chunk is one item of bytes: numpy then copies row by row in one loop, not an outer
        # loop over rows with an inner one over a few columns (a 1518 x 5 chunk: 5 us against 12 us)
        row = f"V{to.shape[1] * to.itemsize}"
        to.view(row)[...] = fro.view(row)
    else:
        to[...] = fro


def _read_range(view: memoryview, p: Plan, k0: int, k1: int, out: np.ndarray) -> None:
    """Chunks ``k0:k1`` of ``p`` into ``out``: :func:`_read_one`'s work, with what is the same for every chunk
    worked out once. For the usual case (2-D, the file's dtype, no shuffle, ``out`` C-contiguous) each chunk is
    copied as one row of bytes per array row, between two views made straight from the buffers; fewer Python
    operations per chunk also mean less waiting for the GIL between the threads."""
    itemsize = p.dtype.itemsize
    if not (
        out.ndim == 2 and out.dtype == p.dtype and not p.shuffle and out.flags.c_contiguous and out.size and k1 > k0
    ):
        for k in range(k0, k1):
            _read_one(view, p, k, out)
        return
    ch0, ch1 = p.chunk
    nbytes = ch0 * ch1 * itemsize
    rows, cols = out.shape
    row_stride, chunk_stride = cols * itemsize, ch1 * itemsize
    rowtypes: dict[int, np.dtype] = {}
    deflate, addresses, sizes, masks, offsets = p.deflate, p.addresses, p.sizes, p.masks, p.offsets
    for k in range(k0, k1):
        a = addresses[k]
        raw: Any = view[a : a + sizes[k]]
        if deflate and not masks[k] & 1:
            raw = INFLATE(raw, 15, nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"chunk {k} holds {len(raw)} bytes, not {nbytes}")
        r0, c0 = offsets[k]
        nr, nc = min(ch0, rows - r0), min(ch1, cols - c0)
        rowtype = rowtypes.get(nc)
        if rowtype is None:
            rowtype = rowtypes[nc] = np.dtype(f"V{nc * itemsize}")
        dst = np.ndarray((nr,), rowtype, out, (r0 * cols + c0) * itemsize, (row_stride,))
        dst[...] = np.ndarray((nr,), rowtype, raw, 0, (chunk_stride,))


def read_chunks(path: str, jobs: list[tuple[Plan, np.ndarray]], threads: int, progress: Any = None) -> list[int]:
    """Read every ``(plan, out)`` of ``path`` into ``out`` (an array of the dataset's shape; numpy casts to its
    dtype), with up to ``threads`` threads. Returns the indices of the jobs that could not be read here (a chunk
    that did not inflate, or inflated to the wrong size): read those through HDF5, which also names the error.
    ``progress``: a tqdm bar, advanced by the stored bytes read."""
    if not jobs:
        return []
    failed: set[int] = set()
    lock = threading.Lock()
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    try:
        # each thread takes one contiguous run of chunks, the runs of about equal stored bytes; a run is a list of
        # (job, first chunk, end) pieces
        total = sum(p.stored for p, _ in jobs)
        n = max(1, min(threads, sum(len(p.sizes) for p, _ in jobs))) if total >= THREADED_BYTES else 1
        runs: list[list[tuple[int, int, int]]] = [[] for _ in range(n)]
        acc, target, r = 0, total / n, 0
        for j, (p, _) in enumerate(jobs):
            start = 0
            for k, size in enumerate(p.sizes):
                acc += size
                if acc >= target * (r + 1) and r < n - 1:  # the run ends after this chunk
                    runs[r].append((j, start, k + 1))
                    start, r = k + 1, r + 1
            if start < len(p.sizes) or not p.sizes:
                runs[r].append((j, start, len(p.sizes)))

        def work(pieces: list[tuple[int, int, int]]) -> None:
            for j, k0, k1 in pieces:
                if j not in failed:
                    try:
                        _read_range(view, jobs[j][0], k0, k1, jobs[j][1])
                    except (ValueError, INFLATE_ERROR, zlib.error):
                        with lock:
                            failed.add(j)
                if progress is not None:
                    with lock:
                        progress.update(sum(jobs[j][0].sizes[k0:k1]))

        errors: list[BaseException] = []

        def guarded(pieces: list[tuple[int, int, int]]) -> None:  # anything else (a MemoryError) stops the read
            try:
                work(pieces)
            except BaseException as e:  # noqa: BLE001 - re-raised below, in the caller, once every thread stopped
                errors.append(e)

        workers = [threading.Thread(target=guarded, args=(pieces,)) for pieces in runs[1:]]
        for w in workers:
            w.start()
        try:
            work(runs[0])
        finally:
            for w in workers:
                w.join()
        if errors:
            raise errors[0]
    finally:
        view.release()
        mm.close()
    return sorted(failed)
