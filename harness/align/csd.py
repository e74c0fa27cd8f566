"""Computational sequences (.csd files) and their in-memory form, :class:`CompSeq`.

A .csd file is HDF5 with one top-level group named after the sequence's root name::

    <root>/data/<entry>/intervals   (N, 2) start and end seconds
    <root>/data/<entry>/features    (N, ...) one row per interval
    <root>/metadata/<key>           (1,) string, JSON-encoded

An entry is a video id in a raw sequence and ``<video id>[<row>]`` once aligned. In memory every entry's rows
live in one array (CSR form): ``intervals[offsets[e]:offsets[e + 1]]`` are entry ``e``'s rows, so an aligned
sequence with half a million entries is three arrays and a list of names, not a million small arrays.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..errors import MfmBenchError

# The metadata keys mmsdk's validator looks for (mmsdk/mmdatasdk/configurations/metadataconfigs.py). Its list lacks a
# comma after "dimension names", so mmsdk actually checks for the concatenated key below; files we write carry both
# spellings so that mmsdk reads them back without complaint.
METADATA_KEYS = (
    "root name",
    "computational sequence description",
    "dimension names",
    "computational sequence version",
    "alignment compatible",
    "dataset name",
    "dataset version",
    "creator",
    "contact",
    "featureset bib citation",
    "dataset bib citation",
)
MMSDK_JOINED_KEY = "dimension namescomputational sequence version"


class CSDFormatError(MfmBenchError, ValueError):
    """A .csd file or a computational sequence that breaks the layout; the message names the file and entry."""


class CSDMetadataWarning(UserWarning):
    """A .csd file without some of the metadata keys mmsdk expects (alignment still works)."""


class Entry(NamedTuple):
    intervals: np.ndarray  # (n, 2)
    features: np.ndarray  # (n, ...)


def strip_key(key: str) -> str:
    """``"vid[3][0]"`` -> ``"vid"``: the video id an (aligned) entry belongs to, as mmsdk splits it."""
    return key.split("[", 1)[0]


class CompSeq(Mapping):
    """One computational sequence: named entries, each with (intervals, features), stored in CSR form.

    ``seq[key]`` returns an :class:`Entry` (a named tuple ``(intervals, features)`` of views), iteration yields
    the entry names in order. ``intervals`` is ``(M, 2)``, ``features`` ``(M, *feature_shape)``, ``offsets``
    ``(len(keys) + 1,)`` int64.
    """

    def __init__(
        self,
        name: str,
        keys: list[str],
        offsets: np.ndarray,
        intervals: np.ndarray,
        features: np.ndarray,
        metadata: dict[str, Any] | None = None,
        *,
        source: str | None = None,
        videos: list[str] | None = None,
    ):
        self.name = name
        self.keys_list = list(keys)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.intervals = intervals
        self.features = features
        self.metadata = dict(metadata or {})
        self.source = source or f"<{name}>"
        self._videos = videos  # strip_key of every entry, when the producer already knows it
        self._index: dict[str, int] | None = None
        where = f"computational sequence {self.source}"
        if self.offsets.shape != (len(self.keys_list) + 1,) or (len(self.offsets) and self.offsets[0] != 0):
            raise CSDFormatError(f"{where}: offsets must have len(keys) + 1 entries starting at 0")
        if intervals.ndim != 2 or intervals.shape[1] != 2:
            raise CSDFormatError(f"{where}: intervals must be (N, 2), got {intervals.shape}")
        if features.ndim < 2:
            raise CSDFormatError(f"{where}: features must be at least 2-D (rows, dims...), got {features.shape}")
        if features.shape[0] != intervals.shape[0] or self.offsets[-1] != intervals.shape[0]:
            raise CSDFormatError(
                f"{where}: {intervals.shape[0]} interval rows, {features.shape[0]} feature rows "
                f"and offsets ending at {self.offsets[-1]} must agree"
            )

    # -- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, name: str, data: Mapping[str, Any], metadata: dict[str, Any] | None = None, *, source: str | None = None
    ) -> CompSeq:
        """Build from ``{key: (intervals, features)}`` (or mmsdk's ``{key: {"intervals": .., "features": ..}}``)."""
        where = source or f"<{name}>"
        keys, ivs, fts = [], [], []
        for key, value in data.items():
            if isinstance(value, Mapping):
                iv, ft = value["intervals"], value["features"]
            else:
                iv, ft = value
            iv, ft = np.asarray(iv), np.asarray(ft)
            _check_entry(iv.shape, ft.shape, where, key)
            keys.append(key)
            ivs.append(iv)
            fts.append(ft)
        if not keys:
            return cls.empty(name, (1,), metadata=metadata)
        shapes = {f.shape[1:] for f in fts}
        if len(shapes) > 1:
            first = fts[0].shape[1:]
            bad = next(k for k, f in zip(keys, fts) if f.shape[1:] != first)
            raise CSDFormatError(
                f"{where}: entry {bad!r} has features of shape {dict(zip(keys, fts))[bad].shape[1:]} "
                f"per row, entry {keys[0]!r} {first}; every entry needs the same feature shape"
            )
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum([len(i) for i in ivs], out=offsets[1:])
        return cls(
            name, keys, offsets, np.concatenate(ivs, axis=0), np.concatenate(fts, axis=0), metadata, source=source
        )

    @classmethod
    def empty(cls, name: str, feature_shape: tuple[int, ...], dtype=np.float64, metadata=None) -> CompSeq:
        return cls(name, [], np.zeros(1, np.int64), np.zeros((0, 2)), np.zeros((0, *feature_shape), dtype), metadata)

    # -- mapping interface ----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.keys_list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_list)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def __getitem__(self, key: str) -> Entry:
        e = self.index[key]
        a, b = self.offsets[e], self.offsets[e + 1]
        return Entry(self.intervals[a:b], self.features[a:b])

    def __repr__(self) -> str:
        return (
            f"CompSeq({self.name!r}, {len(self)} entries, {self.n_rows} rows, "
            f"features {self.feature_shape} {self.features.dtype})"
        )

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys_list)}
            if len(self._index) != len(self.keys_list):
                dup = next(k for i, k in enumerate(self.keys_list) if self._index[k] != i)
                raise CSDFormatError(f"computational sequence {self.source}: entry {dup!r} appears twice")
        return self._index

    @property
    def videos(self) -> list[str]:
        """The video id of every entry (``strip_key``), in entry order."""
        if self._videos is None:
            self._videos = [strip_key(k) for k in self.keys_list]
        return self._videos

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def n_rows(self) -> int:
        return int(self.intervals.shape[0])

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_dict(self) -> dict[str, Entry]:
        return {k: self[k] for k in self.keys_list}

    def replace(self, **changes) -> CompSeq:
        """A copy with some attributes changed (arrays are shared unless replaced)."""
        kw = dict(
            name=self.name,
            keys=self.keys_list,
            offsets=self.offsets,
            intervals=self.intervals,
            features=self.features,
            metadata=self.metadata,
            source=self.source,
        )
        if "keys" not in changes:
            kw["videos"] = self._videos
        kw.update(changes)
        return CompSeq(**kw)

    def select(self, positions: np.ndarray | list[int]) -> CompSeq:
        """The entries at ``positions`` (in that order), rows copied into new arrays."""
        pos = np.asarray(positions, dtype=np.int64)
        counts = self.counts()[pos]
        offsets = np.zeros(len(pos) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if len(pos) == len(self) and np.array_equal(pos, np.arange(len(self))):
            return self
        rows = _ranges(self.offsets[pos], counts, int(offsets[-1]))
        videos = None if self._videos is None else [self._videos[i] for i in pos]
        return CompSeq(
            self.name,
            [self.keys_list[i] for i in pos],
            offsets,
            self.intervals[rows],
            self.features[rows],
            self.metadata,
            source=self.source,
            videos=videos,
        )


def _ranges(starts: np.ndarray, counts: np.ndarray, total: int) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c), without a Python loop."""
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    out_start = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out_start[1:])
    rows = np.arange(total, dtype=np.int64)
    rows += np.repeat(starts - out_start, counts)
    return rows


def _check_entry(iv_shape, ft_shape, where: str, key: str) -> None:
    # The checks mmsdk's validate_data_format makes, plus the (N, 2) width alignment relies on.
    if len(iv_shape) != 2 or iv_shape[1] != 2:
        raise CSDFormatError(
            f"{where}: video {key!r} has intervals of shape {tuple(iv_shape)}; "
            "intervals must be 2-D, (N, 2) start and end seconds"
        )
    if len(ft_shape) < 2:
        raise CSDFormatError(
            f"{where}: video {key!r} has features of shape {tuple(ft_shape)}; "
            "features must be at least 2-D (one row per interval)"
        )
    if ft_shape[0] != iv_shape[0]:
        raise CSDFormatError(
            f"{where}: video {key!r} has {iv_shape[0]} intervals but {ft_shape[0]} feature rows; "
            "the first dimensions must be equal"
        )


# -- reading ----------------------------------------------------------------------------------------------------
def _root(h5, path) -> Any:
    names = list(h5.keys())
    if not names:
        raise CSDFormatError(f"{path}: no top-level group; a .csd file holds <root name>/data and <root name>/metadata")
    return names[0], h5[names[0]]


def csd_entries(path: str | os.PathLike) -> list[str]:
    """The entry names (video ids) of a .csd file, without reading any array."""
    import h5py

    if str(path).endswith(".npz"):
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as z:
                return [str(k) for k in z["keys"]]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise CSDFormatError(f"{path}: not a sequence written by `mfm-bench align --format npz` ({e})") from None
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise CSDFormatError(f"{path}: not an HDF5 computational sequence ({e})") from None
    with h5:
        _, root = _root(h5, path)
        if "data" not in root:
            raise CSDFormatError(f"{path}: group {root.name!r} has no 'data' subgroup")
        return list(root["data"].keys())


def _common_dtype(datasets) -> np.dtype:
    dtypes = list({d.dtype for d in datasets})
    if len(dtypes) == 1:
        return dtypes[0]  # keeps h5py's string metadata on object dtypes
    return np.result_type(*dtypes)


def _decode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read_csd(
    path: str | os.PathLike, *, videos: set[str] | list[str] | None = None, progress: bool | str = False
) -> CompSeq:
    """Read a .csd file into a :class:`CompSeq`.

    The first top-level group is the root whatever its name. Each array is read whole, in one call, straight into
    its place in the concatenated array. ``videos`` keeps only those entries (by exact name). Layout violations
    raise :class:`CSDFormatError` naming the file and the entry; missing metadata is a :class:`CSDMetadataWarning`.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such .csd file")
    if path.endswith(".npz"):  # written by `mfm-bench align --format npz`
        from .output import read_npz

        return read_npz(path, videos=videos)
    with CSDReader(path, videos=videos) as r:
        offsets, intervals, features = r.read(progress=progress)
        metadata = r.metadata(stacklevel=3)
    return CompSeq(r.root_name, r.names, offsets, intervals, features, metadata, source=path)


class CSDReader:
    """An open .csd (HDF5) file whose entries are checked and sized but not read: :meth:`read` reads all of them or
    some, into new arrays or the caller's buffers. :func:`read_csd` reads a whole file; a caller that wants a few
    entries at a time (``align_files`` aligning a large file video by video) reads batches into one buffer."""

    def __init__(self, path: str | os.PathLike, *, videos: set[str] | list[str] | None = None):
        import h5py
        from h5py import h5d, h5g

        self.path = path = str(path)
        try:
            self.h5 = h5py.File(path, "r")
        except OSError as e:
            raise CSDFormatError(f"{path}: not an HDF5 computational sequence ({e})") from None
        try:
            self.root_name, self.root = _root(self.h5, path)
            if "data" not in self.root:
                raise CSDFormatError(f"{path}: group {self.root_name!r} has no 'data' subgroup")
            data = self.root["data"]
            names = list(data.keys())
            if videos is not None:
                wanted = set(videos)
                names = [n for n in names if n in wanted]
            # h5py's low-level handles: a file aligned to words has a group per word, and the high-level
            # objects cost several times more per entry than these
            gid = data.id
            ivds, ftds = [], []
            for n in names:
                try:
                    g = h5g.open(gid, n.encode())
                    iv, ft = h5d.open(g, b"intervals"), h5d.open(g, b"features")
                except (KeyError, ValueError, TypeError) as e:
                    raise CSDFormatError(
                        f"{path}: video {n!r} must be a group holding 'intervals' and 'features' datasets ({e})"
                    ) from None
                _check_entry(iv.shape, ft.shape, path, n)
                ivds.append(iv)
                ftds.append(ft)
            if ftds:
                fshape = ftds[0].shape[1:]
                for n, ft in zip(names, ftds):
                    if ft.shape[1:] != fshape:
                        raise CSDFormatError(
                            f"{path}: video {n!r} has {ft.shape[1:]} features per row, video "
                            f"{names[0]!r} {fshape}; every video needs the same feature shape"
                        )
                self.iv_dtype, self.ft_dtype = _common_dtype(ivds), _common_dtype(ftds)
            else:
                fshape, self.iv_dtype, self.ft_dtype = (1,), np.dtype(np.float64), np.dtype(np.float64)
        except BaseException:
            self.h5.close()
            raise
        self.names, self.ivds, self.ftds, self.feature_shape = names, ivds, ftds, tuple(fshape)
        self.counts = np.array([d.shape[0] for d in ivds], dtype=np.int64)

    def __enter__(self) -> CSDReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.ivds, self.ftds = [], []
        self.h5.close()

    def row_bytes(self) -> int:
        """Bytes one row takes in memory (intervals and features)."""
        return 2 * self.iv_dtype.itemsize + int(np.prod(self.feature_shape)) * self.ft_dtype.itemsize

    def read(
        self,
        indices: list[int] | None = None,
        *,
        buffers: tuple[np.ndarray, np.ndarray] | None = None,
        progress: bool | str = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(offsets, intervals, features)`` of the entries at ``indices`` (default all), in that order.
        ``buffers``: ``(intervals, features)`` arrays with at least as many rows, whose first rows receive them
        (the returned arrays are views of those rows)."""
        path, names = self.path, self.names
        sel = list(range(len(names))) if indices is None else list(indices)
        ivds, ftds = [self.ivds[i] for i in sel], [self.ftds[i] for i in sel]
        offsets = np.zeros(len(sel) + 1, dtype=np.int64)
        np.cumsum(self.counts[sel], out=offsets[1:])
        rows = int(offsets[-1])
        if buffers is None:
            intervals = np.empty((rows, 2), dtype=self.iv_dtype)
            features = np.empty((rows, *self.feature_shape), dtype=self.ft_dtype)
        else:
            intervals, features = buffers[0][:rows], buffers[1][:rows]
        sub = [names[i] for i in sel]
        bounds = [0, len(sel)]  # entries [bounds[k], bounds[k + 1]) are part k; part 0 is read here
        children: list[int | None] = []
        desc = (progress if isinstance(progress, str) else f"read {self.root_name}") if progress else None
        direct = _read_direct(path, self.h5, sub, ivds, ftds, offsets, intervals, features, desc)
        if direct is not None:  # every array inflated by this process's threads (chunks.py); HDF5 reads the rest
            _read_entries(direct, ivds, ftds, offsets, intervals, features)
            bounds = [0, 0]
        whole = indices is None and buffers is None and features.dtype.kind != "O" and direct is None
        parts = _read_parts(features.nbytes + intervals.nbytes) if whole else 1
        if parts > 1:
            # forked children read the other parts of the rows into shared memory while this process reads the
            # first: HDF5 decompresses in one thread per process, so each core takes its share of a large read
            intervals, features = _shared_like(intervals), _shared_like(features)
            cuts = np.searchsorted(offsets, [offsets[-1] * k // parts for k in range(1, parts)])
            bounds = [0, *(int(c) for c in cuts), len(sel)]
            children = [
                _fork_reader(path, sub, bounds[k], bounds[k + 1], offsets, intervals, features) for k in range(1, parts)
            ]
        it = range(bounds[1])
        if desc and bounds[1]:
            from tqdm import tqdm

            it = tqdm(it, desc=desc, unit=" videos", leave=False, disable=None)
        try:
            _read_entries(it, ivds, ftds, offsets, intervals, features)
        except BaseException:
            for pid in children:
                if pid is not None:
                    os.waitpid(pid, 0)
            raise
        for k, pid in enumerate(children, start=1):  # a part whose child failed is read here (its error shows here)
            if pid is None or os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
                _read_entries(range(bounds[k], bounds[k + 1]), ivds, ftds, offsets, intervals, features)
        return offsets, intervals, features

    def metadata(self, stacklevel: int = 2) -> dict[str, Any]:
        """The decoded metadata; a :class:`CSDMetadataWarning` when it is missing or incomplete."""
        root, path = self.root, self.path
        metadata: dict[str, Any] = {}
        if "metadata" in root:
            for key in root["metadata"].keys():
                metadata[key] = _decode(root["metadata"][key][()])
        else:
            warnings.warn(
                f"{path}: no metadata group; the sequence is read without metadata",
                CSDMetadataWarning,
                stacklevel=stacklevel,
            )
        missing = [k for k in METADATA_KEYS if k not in metadata]
        if missing and "metadata" in root:
            warnings.warn(f"{path}: metadata lacks {missing}", CSDMetadataWarning, stacklevel=stacklevel)
        return metadata


def _read_direct(path, h5, names, ivds, ftds, offsets, intervals, features, desc) -> list[int] | None:
    """Read the entries through :mod:`.chunks` when every array of the file can be: None when not (HDF5 reads
    them all), else the entries HDF5 must read again (a chunk that did not inflate to its size). ``desc``: the
    progress bar's label, or None for no bar."""
    from . import chunks

    if not chunks.enabled() or features.dtype.kind == "O" or not names:
        return None
    try:  # a file with a user block: HDF5 2.0 reports chunk addresses from the file's start, we have not checked
        # that every version does, and an unfiltered chunk read from the wrong place would not fail, so HDF5 reads
        # such files (.csd files have no user block)
        if int(h5.id.get_create_plist().get_userblock()) != 0:
            return None
    except (AttributeError, ValueError, RuntimeError):
        return None
    jobs, owner = [], []
    for i in range(len(names)):
        a, b = offsets[i], offsets[i + 1]
        for ds, out in ((ivds[i], intervals), (ftds[i], features)):
            plan = chunks.plan(ds)
            if plan is None:
                return None
            jobs.append((plan, out[a:b]))
            owner.append(i)
    from ..executors.base import usable_cores

    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(
            total=sum(p.stored for p, _ in jobs), desc=desc, unit="B", unit_scale=True, leave=False, disable=None
        )
    try:
        failed = chunks.read_chunks(path, jobs, min(usable_cores(), SPLIT_READ_MAX), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return sorted({owner[j] for j in failed})


def _read_entries(indices, ivds, ftds, offsets, intervals, features) -> None:
    """Each entry's datasets whole, one call each, straight into their rows (HDF5 converts the dtype if needed)."""
    import h5py
    from h5py import h5s

    for i in indices:
        a, b = offsets[i], offsets[i + 1]
        if b > a:
            for ds, out in ((ivds[i], intervals), (ftds[i], features)):
                try:
                    if out.dtype.kind == "O":  # variable-length strings (word tokens): h5py converts them
                        out[a:b] = h5py.Dataset(ds)[()]
                    else:
                        ds.read(h5s.ALL, h5s.ALL, out[a:b])
                except OSError as e:  # a damaged chunk: HDF5's message alone names neither file nor dataset
                    from h5py import h5f, h5i

                    where = f"{h5f.get_name(ds).decode()}: {h5i.get_name(ds).decode()}"
                    raise CSDFormatError(
                        f"{where} cannot be read ({e}); the file is damaged or truncated: fetch or write it again"
                    ) from None


#: a file whose arrays take at least this many bytes is read by several processes (see :func:`_read_parts`)
SPLIT_READ_BYTES = 256 * 1024 * 1024
#: at most this many processes (the split read) or threads (:mod:`.chunks`) read one file: our choice, to keep the
#: processes opening one file, or the threads sharing one mapping of it, modest on large machines
SPLIT_READ_MAX = 8


def _read_parts(nbytes: int) -> int:
    """Processes to read a file with: one per usable core (at most ``SPLIT_READ_MAX``) for a large file where
    ``fork`` is available, unless ``MFM_BENCH_SPLIT_READ=0``; else 1. On the 2-core machine of
    docs/performance.md a CMU-MOSI-sized COVAREP file (2 million rows of 74 gzip-compressed float64 features)
    took 4.9 s in one process and 2.7 s in two (docs/align.md)."""
    import multiprocessing

    from ..executors.base import usable_cores

    if os.environ.get("MFM_BENCH_SPLIT_READ", "1") == "0" or nbytes < SPLIT_READ_BYTES:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(usable_cores(), SPLIT_READ_MAX))


def _shared_like(a: np.ndarray) -> np.ndarray:
    """An uninitialised array like ``a`` in anonymous shared memory: a forked child's writes reach this process."""
    import mmap

    buf = mmap.mmap(-1, max(a.nbytes, 1))
    return np.frombuffer(buf, dtype=a.dtype, count=a.size).reshape(a.shape)


def _fork_reader(path, names, start, stop, offsets, intervals, features) -> int | None:
    """Fork a child that opens ``path`` itself and reads entries ``start:stop`` (of ``names``, in file order) into
    the shared arrays; its pid, or None when fork failed (this process then reads them)."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    code = 1
    try:  # the child: its own file handle, nothing written but the shared arrays, no interpreter teardown
        part = names[start:stop]
        with CSDReader(path, videos=part) as r:
            if r.names == part:  # else the file changed under us: exit 1, and the parent reads the part
                _read_entries(range(len(part)), r.ivds, r.ftds, offsets[start : stop + 1], intervals, features)
                code = 0
    finally:
        os._exit(code)


# -- writing ----------------------------------------------------------------------------------------------------
def complete_metadata(seq: CompSeq) -> dict[str, Any]:
    """The sequence's metadata with every key mmsdk expects present (placeholders where unknown)."""
    md = dict(seq.metadata)
    md["root name"] = seq.name
    defaults = {
        "computational sequence description": f"{seq.name} computational sequence",
        "dimension names": None,
        "computational sequence version": "1.0",
        "alignment compatible": True,
        "dataset name": "unknown",
        "dataset version": "unknown",
        "creator": "mfm-bench",
        "contact": "unknown",
        "featureset bib citation": "",
        "dataset bib citation": "",
    }
    for k, v in defaults.items():
        md.setdefault(k, v)
    md.setdefault(MMSDK_JOINED_KEY, md["computational sequence version"])
    return md
