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
and floats, either byte order) whose filters are gzip (deflate) and optionally shuffle, every chunk allocated. Any
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
#: below this many compressed bytes a file is inflated in the calling thread only
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


def plan(dsid: Any, base: int = 0) -> Plan | None:
    """The chunk plan of an h5py ``DatasetID``, or None when HDF5 must read it (see the module docstring).
    ``base``: the file's base address (its user block size), added to each chunk's address."""
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
            addresses.append(int(info.byte_offset) + base)
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
        # each thread takes one contiguous run of chunks, the runs of about equal stored bytes
        units = [(j, k) for j, (p, _) in enumerate(jobs) for k in range(len(p.sizes))]
        total = sum(p.stored for p, _ in jobs)
        n = max(1, min(threads, len(units))) if total >= THREADED_BYTES else 1
        cuts = [0]
        if n > 1:
            acc, target = 0, total / n
            for i, (j, k) in enumerate(units):
                acc += jobs[j][0].sizes[k]
                if acc >= target * len(cuts) and len(cuts) < n:
                    cuts.append(i + 1)
        cuts.append(len(units))

        def work(lo: int, hi: int) -> None:
            done = 0
            for i, (j, k) in enumerate(units[lo:hi], start=1):
                if j not in failed:
                    try:
                        _read_one(view, jobs[j][0], k, jobs[j][1])
                    except (ValueError, INFLATE_ERROR, zlib.error):
                        with lock:
                            failed.add(j)
                done += jobs[j][0].sizes[k]
                if progress is not None and (i % 256 == 0 or i == hi - lo):
                    with lock:
                        progress.update(done)
                    done = 0

        errors: list[BaseException] = []

        def guarded(lo: int, hi: int) -> None:  # anything else (a MemoryError) stops the read, in the caller
            try:
                work(lo, hi)
            except BaseException as e:  # noqa: BLE001 - re-raised below, once every thread has stopped
                errors.append(e)

        workers = [threading.Thread(target=guarded, args=(cuts[i], cuts[i + 1])) for i in range(1, len(cuts) - 1)]
        for w in workers:
            w.start()
        try:
            work(cuts[0], cuts[1])
        finally:
            for w in workers:
                w.join()
        if errors:
            raise errors[0]
    finally:
        view.release()
        mm.close()
    return sorted(failed)
