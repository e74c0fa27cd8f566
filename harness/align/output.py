"""Writing aligned sequences: the mmsdk-readable .csd layout, fast, and a flat .npz for everything else.

A sequence aligned to words has one entry per word (51,056 for CMU-MOSI), and the mmsdk layout wants an HDF5 group
with two datasets for each. h5py's high-level objects cost most of the time of such a write, so the default writer
creates groups and datasets through h5py's low-level API, in a file with the newest format (``libver="latest"``:
compact link storage for the small groups), stores small arrays in their dataset's header (compact layout),
without per-dataset compression or timestamps, and writes the metadata once per file. With ``compression`` (or word
tokens as features, which need h5py's string conversion) it falls back
to the high-level calls, which choose chunk shapes for the filters.

The ``.npz`` form keeps the in-memory CSR layout of :class:`~mfm_bench.align.csd.CompSeq` as it is:
``keys`` (E,) str, ``offsets`` (E + 1,) int64, ``intervals`` (M, 2), ``features`` (M, ...) and ``meta.json``
(the root name and the metadata as JSON). ``read_csd`` reads both forms.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..io import atomic_path
from .csd import CompSeq, CSDFormatError, complete_metadata

NPZ_FORMAT = "mfm-bench-compseq"


def write_csd(
    path: str | os.PathLike, seq: CompSeq, *, compression: str | None = None, progress: bool | str = False
) -> Path:
    """Write ``seq`` as a .csd file mmsdk can read back, atomically (temporary file, then rename).

    The root group is named ``seq.name``; every mmsdk metadata key is present (see :func:`complete_metadata`).
    ``compression`` (gzip or lzf) compresses every array.
    """
    import h5py

    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="latest") as h5:
            root = h5.create_group(seq.name)
            data = root.create_group("data")
            entries = _progress(range(len(seq)), progress, f"write {seq.name}")
            if compression or seq.features.dtype.kind == "O":
                _write_entries_high_level(data, seq, entries, compression)
            else:
                _write_entries_low_level(data, seq, entries)
            _write_metadata(root, seq)
    return path


def _progress(it, progress: bool | str, desc: str):
    if not progress:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=progress if isinstance(progress, str) else desc, unit=" entries", leave=False, disable=None)


#: Arrays up to this size are stored in their dataset's header (HDF5's compact layout): no separate allocation
#: and write, which is most of the cost of a word-aligned entry of a row or two.
COMPACT_BYTES = 16 * 1024


def _hdf5_c_api():
    """The HDF5 C functions the entry loop calls, bound with ctypes to the library h5py itself loaded (never a
    second copy: ``RTLD_NOLOAD``), or None where that library cannot be found or ``MFM_BENCH_HDF5_CAPI=0`` (then
    h5py's low-level calls do the work). Each h5py call wraps its result in a Python object registered in a weak
    dictionary, and that bookkeeping was about 40% of a word-aligned write's time (``perf`` on 50,545 entries)."""
    if os.environ.get("MFM_BENCH_HDF5_CAPI", "1") == "0":
        return None
    return _bind_hdf5()


@functools.cache
def _bind_hdf5():
    """:func:`_hdf5_c_api`'s binding, made once per process."""
    import ctypes

    if not hasattr(os, "RTLD_NOLOAD"):
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libhdf5" in line and "_hl" not in line}
    except OSError:
        return None
    paths = [p for p in paths if os.path.basename(p).startswith("libhdf5") and ".so" in p]
    if len(paths) != 1:
        return None
    try:
        lib = ctypes.CDLL(paths[0], mode=os.RTLD_NOLOAD | os.RTLD_NOW)
        hid, herr = ctypes.c_int64, ctypes.c_int
        api = {
            "gcreate": (lib.H5Gcreate2, hid, [hid, ctypes.c_char_p, hid, hid, hid]),
            "dcreate": (lib.H5Dcreate2, hid, [hid, ctypes.c_char_p, hid, hid, hid, hid, hid]),
            "dwrite": (lib.H5Dwrite, herr, [hid, hid, hid, hid, hid, ctypes.c_void_p]),
            "dclose": (lib.H5Dclose, herr, [hid]),
            "gclose": (lib.H5Gclose, herr, [hid]),
        }
    except (OSError, AttributeError):
        return None
    for fn, restype, argtypes in api.values():
        fn.restype, fn.argtypes = restype, argtypes
    return {k: v[0] for k, v in api.items()}


def _h5py_lock():
    """The lock h5py holds around every call into HDF5 (the bundled library is not thread-safe), or a no-op
    context where h5py does not expose it."""
    import contextlib

    try:
        from h5py._objects import phil
    except ImportError:
        return contextlib.nullcontext()
    return phil


class _Array(NamedTuple):
    """One of an entry's two datasets: its name, the concatenated array (and its address), its HDF5 type, bytes
    per row."""

    name: bytes
    arr: np.ndarray
    base: int
    tid: Any
    row: int


def _write_entries_low_level(data, seq: CompSeq, entries) -> None:
    """One group and two datasets per entry, through direct HDF5 calls where the library can be bound
    (:func:`_hdf5_c_api`), else through h5py's low-level API (h5g, h5d): no high-level objects either way."""
    from h5py import h5d, h5p, h5t

    arrays = []
    for name, a in ((b"features", seq.features), (b"intervals", seq.intervals)):
        arr = np.ascontiguousarray(a)
        row = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        arrays.append(_Array(name, arr, arr.ctypes.data, h5t.py_create(arr.dtype, logical=True), row))
    contiguous, compact = h5p.create(h5p.DATASET_CREATE), h5p.create(h5p.DATASET_CREATE)
    for dcpl in (contiguous, compact):
        dcpl.set_obj_track_times(False)  # h5py's default too: no timestamps, so equal inputs give equal files
    compact.set_layout(h5d.COMPACT)
    gcpl = h5p.create(h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)  # nor on the groups: the same sequence gives the same bytes
    api = _hdf5_c_api()
    if api is None:
        _entries_h5py(data, seq, entries, arrays, (gcpl, compact, contiguous))
        return
    with _h5py_lock():  # h5py's own lock: no other thread's h5py call runs inside these HDF5 calls
        _entries_c(api, data, seq, entries, arrays, (gcpl, compact, contiguous))


def _space(spaces: dict, shape: tuple[int, ...]) -> Any:
    """A simple dataspace of ``shape``, one per shape (word-aligned entries share a few)."""
    from h5py import h5s

    return spaces.get(shape) or spaces.setdefault(shape, h5s.create_simple(shape))


def _entries_h5py(data, seq: CompSeq, entries, arrays: list[_Array], plists) -> None:
    from h5py import h5d, h5g, h5s

    gcpl, compact, contiguous = plists
    spaces: dict[tuple[int, ...], Any] = {}
    off, gid = seq.offsets, data.id
    for e in entries:
        a, b = int(off[e]), int(off[e + 1])
        g = h5g.create(gid, seq.keys_list[e].encode(), gcpl=gcpl)
        for x in arrays:
            space = _space(spaces, (b - a, *x.arr.shape[1:]))
            ds = h5d.create(
                g, x.name, x.tid, space, dcpl=compact if 0 < (b - a) * x.row <= COMPACT_BYTES else contiguous
            )
            if b > a:
                ds.write(h5s.ALL, h5s.ALL, x.arr[a:b])


def _entries_c(api, data, seq: CompSeq, entries, arrays: list[_Array], plists) -> None:
    """:func:`_entries_h5py` as direct HDF5 calls; raises OSError naming the entry."""
    gcpl, compact, contiguous = plists
    spaces: dict[tuple[int, ...], Any] = {}  # kept alive while their ids are used
    off, gid, keys = seq.offsets, data.id.id, seq.keys_list
    gcreate, dcreate, dwrite, dclose, gclose = (api[k] for k in ("gcreate", "dcreate", "dwrite", "dclose", "gclose"))
    for e in entries:
        a, b = int(off[e]), int(off[e + 1])
        g = gcreate(gid, keys[e].encode(), 0, gcpl.id, 0)
        if g < 0:
            raise OSError(f"HDF5 could not create the group of entry {keys[e]!r}")
        try:
            for x in arrays:
                space = _space(spaces, (b - a, *x.arr.shape[1:]))
                dcpl = compact if 0 < (b - a) * x.row <= COMPACT_BYTES else contiguous
                d = dcreate(g, x.name, x.tid.id, space.id, 0, dcpl.id, 0)
                if d < 0:
                    raise OSError(f"HDF5 could not create {x.name.decode()} of entry {keys[e]!r}")
                try:
                    if b > a and dwrite(d, x.tid.id, 0, 0, 0, x.base + a * x.row) < 0:
                        raise OSError(f"HDF5 could not write {x.name.decode()} of entry {keys[e]!r}")
                finally:
                    dclose(d)
        finally:
            gclose(g)


def _write_entries_high_level(data, seq: CompSeq, entries, compression: str | None) -> None:
    import h5py

    kw = {"compression": compression} if compression else {}
    fkw = dict(kw)
    if seq.features.dtype.kind == "O":  # Python strings (word tokens): variable-length HDF5 strings
        fkw["dtype"] = h5py.string_dtype()
    off = seq.offsets
    for e in entries:
        g = data.create_group(seq.keys_list[e])
        a, b = off[e], off[e + 1]
        g.create_dataset("features", data=seq.features[a:b], **fkw)
        g.create_dataset("intervals", data=seq.intervals[a:b], **kw)


def _write_metadata(root, seq: CompSeq) -> None:
    import h5py

    meta = root.create_group("metadata")
    for k, v in complete_metadata(seq).items():
        ds = meta.create_dataset(k, (1,), dtype=h5py.string_dtype())
        ds[0] = json.dumps(v, default=str)


# -- the flat .npz form -----------------------------------------------------------------------------------------
def write_npz(path: str | os.PathLike, seq: CompSeq) -> Path:
    """Write ``seq`` as one .npz of its CSR arrays (see the module docstring), atomically."""
    path = Path(path)
    features = seq.features
    if features.dtype.kind == "O":  # word tokens: fixed-width strings load without pickle
        features = features.astype(bytes) if all(isinstance(x, bytes) for x in features.flat) else features.astype(str)
    header = {"format": NPZ_FORMAT, "version": 1, "root name": seq.name, "metadata": complete_metadata(seq)}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            keys=np.array(seq.keys_list, dtype=str),
            offsets=seq.offsets,
            intervals=seq.intervals,
            features=features,
            **{"meta.json": np.array(json.dumps(header, default=str))},
        )
    return path


def read_npz(path: str | os.PathLike, *, videos: set[str] | list[str] | None = None) -> CompSeq:
    """Read a sequence :func:`write_npz` wrote; ``videos`` keeps only those entries (by exact name)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            header: dict[str, Any] = json.loads(str(z["meta.json"]))
            keys, offsets = [str(k) for k in z["keys"]], z["offsets"]
            intervals, features = z["intervals"], z["features"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise CSDFormatError(f"{path}: not a sequence written by `mfm-bench align --format npz` ({e})") from None
    if header.get("format") != NPZ_FORMAT:
        raise CSDFormatError(f"{path}: format {header.get('format')!r}, expected {NPZ_FORMAT!r}")
    seq = CompSeq(header["root name"], keys, offsets, intervals, features, header.get("metadata"), source=str(path))
    if videos is None:
        return seq
    wanted = set(videos)
    return seq.select([i for i, k in enumerate(keys) if k in wanted])


# -- writing in the background ----------------------------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so that atomic writers remove their temporary files on the way out;
    ``mfm-bench`` then exits with ``exit_code``, 128 + SIGTERM (143), where Ctrl-C gives 130."""

    exit_code = 143  # 128 + signal.SIGTERM on every platform with fork (the background writers need it)


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (``kill``, ``timeout``, a scheduler) raises :class:`Terminated`, a
    ``KeyboardInterrupt``: the files being written are removed as on Ctrl-C, instead of staying behind as hidden
    ``.NAME.*.tmp`` files. Outside the main thread it does nothing."""
    from ..signals import sigterm_handler

    with sigterm_handler(_raise_terminated):
        yield


def _write_in_child(conn, fn, args, kw) -> None:
    import signal

    signal.signal(signal.SIGTERM, _raise_terminated)  # a killed writer still removes its temporary file
    try:
        fn(*args, **kw)
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent, which raises it
        import traceback

        with contextlib.suppress(OSError):  # the parent may be gone (killed with the same signal)
            conn.send((type(e).__name__, str(e), traceback.format_exc()))
            conn.close()
        raise SystemExit(1) from None
    conn.send(None)
    conn.close()


class WriteError(RuntimeError):
    """A file written in a background process failed; the message names the file and the child's error."""


class BackgroundWriters:
    """Runs writes (``write_csd``, ``write_npz``) in forked child processes, at most ``workers`` at a time, so
    this process reads and aligns the next sequence while the last one is written.

    h5py serialises every call within a process, and a word-aligned .csd is a few hundred thousand small HDF5
    objects, so writing is the longest step of ``mfm-bench align``; a child on another core takes it off the
    critical path. A forked child shares the aligned arrays with this process (nothing is pickled) and each file
    is still written atomically, so a failed or interrupted write leaves no partial file. ``workers=0``, or a
    platform without ``fork``, writes in this process. Used as a context manager: leaving it waits for every
    write; an exception inside stops the children that are still writing.
    """

    def __init__(self, workers: int) -> None:
        import multiprocessing

        fork = "fork" in multiprocessing.get_all_start_methods()
        self.workers = max(0, workers) if fork else 0
        self._ctx = multiprocessing.get_context("fork") if self.workers else None
        self._running: list[tuple[Any, Any, str]] = []

    def submit(self, label: str, fn, *args, **kw) -> list[str]:
        """Start ``fn(*args, **kw)``; returns the labels of the writes that finished meanwhile, in order."""
        if not self.workers:
            fn(*args, **kw)
            return [label]
        done = []
        while len(self._running) >= self.workers:
            done.append(self._wait_oldest())
        receive, send = self._ctx.Pipe(duplex=False)
        child = self._ctx.Process(target=_write_in_child, args=(send, fn, args, kw), name=f"write {label}")
        child.start()
        send.close()
        self._running.append((child, receive, label))
        return done

    def _wait_oldest(self) -> str:
        child, receive, label = self._running.pop(0)
        try:
            report = receive.recv()
        except EOFError:  # died without a word: killed, or out of memory
            child.join()
            report = ("", f"the writing process ended with exit code {child.exitcode}", "")
        finally:
            receive.close()
        child.join()
        if report is not None:
            kind, message, trace = report
            raise WriteError(f"writing {label} failed: {kind + ': ' if kind else ''}{message}\n{trace}".rstrip())
        return label

    def wait(self) -> list[str]:
        """Wait for every write; returns their labels in the order they were submitted. A failed write raises its
        error once the others have ended (they finish: no process is left writing after this returns)."""
        done, error = [], None
        while self._running:
            try:
                done.append(self._wait_oldest())
            except WriteError as e:
                error = error or e
        if error is not None:
            raise error
        return done

    def __enter__(self) -> BackgroundWriters:
        return self

    def __exit__(self, kind, value, trace) -> None:
        if kind is None:
            self.wait()
            return
        import signal

        for child, _, _ in self._running:  # KeyboardInterrupt in the child: the atomic writer removes its file
            if child.is_alive():
                os.kill(child.pid, signal.SIGINT)
        for child, receive, _ in self._running:
            child.join(10)
            if child.is_alive():
                child.terminate()
                child.join()
            receive.close()
        self._running.clear()
