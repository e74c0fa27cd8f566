"""The mmsdk-compatible alignment pipeline on :class:`CompSeq` objects: align, impute, unify, hard_unify,
tensors, and the whole word-level recipe (:func:`prepare_word_level`). docs/align.md states the rules.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MfmBenchError
from .csd import CompSeq, CSDMetadataWarning, csd_entries, read_csd, strip_key

EPS = 1e-5  # mmsdk's `epsilon = 10e-6`
COLLAPSE_FUNCTIONS = ("mean", "sum", "min", "max")


class AlignError(MfmBenchError, ValueError):
    """Bad arguments to the alignment pipeline (unknown sequence or collapse function, empty input)."""


def _collapse_codes(collapse: Sequence[str] | str | None) -> list[str] | None:
    if collapse is None:
        return None
    if isinstance(collapse, str):
        collapse = [collapse]
    names = [c.strip().lower() for c in collapse]
    if not names or names == ["none"]:
        return None
    if "none" in names:
        raise AlignError(
            f"collapse {names}: 'none' (keep every row) cannot be combined with collapse functions; "
            "give --collapse none alone, or only functions"
        )
    bad = [c for c in names if c not in COLLAPSE_FUNCTIONS]
    if bad:
        raise AlignError(f"unknown collapse function(s) {bad}; choose from {list(COLLAPSE_FUNCTIONS)} or none")
    return names


def _numeric(dt: np.dtype) -> bool:
    return np.dtype(dt).kind in "biuf"


def _float_dtype(dt: np.dtype) -> np.dtype:
    """The dtype kernels compute in: float32/float64 kept, float16 -> float32, anything else -> float64."""
    dt = np.dtype(dt)
    if dt == np.float32 or dt == np.float64:
        return dt
    if dt == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


# -- unify / hard_unify -----------------------------------------------------------------------------------------
def unify(sequences: Mapping[str, CompSeq]) -> dict[str, CompSeq]:
    """Drop every video id (entry name up to the first ``[``) that is not in all sequences."""
    seqs = dict(sequences)
    if not seqs:
        return seqs
    common = set.intersection(*[set(s.videos) for s in seqs.values()])
    out = {}
    for name, s in seqs.items():
        keep = [i for i, v in enumerate(s.videos) if v in common]
        out[name] = s if len(keep) == len(s) else s.select(keep)
    return out


def hard_unify(sequences: Mapping[str, CompSeq]) -> dict[str, CompSeq]:
    """Drop every entry (``vid[i]`` key) that is not in all sequences."""
    seqs = dict(sequences)
    if not seqs:
        return seqs
    common = set.intersection(*[set(s.keys_list) for s in seqs.values()])
    out = {}
    for name, s in seqs.items():
        keep = [i for i, k in enumerate(s.keys_list) if k in common]
        out[name] = s if len(keep) == len(s) else s.select(keep)
    return out


# -- align ------------------------------------------------------------------------------------------------------
class _Reference:
    """The reference side of an alignment, computed once and reused for every other sequence."""

    def __init__(self, ref: CompSeq, eps: float):
        self.seq = ref
        self.eps = eps
        iv = ref.intervals
        if not np.issubdtype(iv.dtype, np.floating) or iv.dtype == np.float16:
            iv = iv.astype(_float_dtype(iv.dtype))
        self.iv = iv
        # mmsdk skips a reference row when abs(r0 - r1) < eps, computed in the reference's own dtype
        self.skip = np.abs(iv[:, 0] - iv[:, 1]) < iv.dtype.type(eps)
        self.rows_of = ref.counts()
        # output key of every reference row: "<entry>[<row within entry>]"
        self.entry_of_row = np.repeat(np.arange(len(ref), dtype=np.int64), self.rows_of)
        self.local_row = np.arange(ref.n_rows, dtype=np.int64) - np.repeat(ref.offsets[:-1], self.rows_of)

    def part(self, e0: int, e1: int) -> _Reference:
        """The reference entries ``e0:e1`` alone, as views (nothing recomputed, no rows copied)."""
        s = self.seq
        r0, r1 = int(s.offsets[e0]), int(s.offsets[e1])
        sub = _Reference.__new__(_Reference)
        sub.seq = CompSeq(
            s.name,
            s.keys_list[e0:e1],
            s.offsets[e0 : e1 + 1] - r0,
            s.intervals[r0:r1],
            s.features[r0:r1],
            s.metadata,
            source=s.source,
            videos=s.videos[e0:e1],
        )
        sub.eps, sub.iv, sub.skip = self.eps, self.iv[r0:r1], self.skip[r0:r1]
        sub.rows_of = self.rows_of[e0:e1]
        sub.entry_of_row = self.entry_of_row[r0:r1] - e0
        sub.local_row = self.local_row[r0:r1]
        return sub

    def keys(self, rows: np.ndarray) -> tuple[list[str], list[str]]:
        names, vids = self.seq.keys_list, self.seq.videos
        ent, loc = self.entry_of_row[rows].tolist(), self.local_row[rows].tolist()
        return [f"{names[e]}[{j}]" for e, j in zip(ent, loc)], [vids[e] for e in ent]

    def groups(self, other: CompSeq) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate row ranges of ``other`` for each reference entry: entries of the same video, in entry order."""
        by_video: dict[str, list[int]] = {}
        for e, v in enumerate(other.videos):
            by_video.setdefault(v, []).append(e)
        seg_ptr = np.zeros(len(self.seq) + 1, dtype=np.int64)
        segs: list[int] = []
        for r, v in enumerate(self.seq.videos):
            segs.extend(by_video.get(v, ()))
            seg_ptr[r + 1] = len(segs)
        seg = np.asarray(segs, dtype=np.int64)
        return other.offsets[:-1][seg], other.offsets[1:][seg], seg_ptr


def _align_reference(ref: _Reference, name: str, funcs: list[str] | None) -> CompSeq:
    s = ref.seq
    rows = np.flatnonzero(~ref.skip)
    keys, vids = ref.keys(rows)
    if len(rows) == s.n_rows:  # nothing skipped: share the arrays
        iv, ft = s.intervals, s.features
    else:
        iv, ft = s.intervals[rows], s.features[rows]
    offsets = np.arange(len(rows) + 1, dtype=np.int64)
    if funcs is None:
        return CompSeq(name, keys, offsets, iv, ft, s.metadata, videos=vids)
    # collapsing one row: the interval is sorted to [min, max] (NaN propagates), every function returns the row
    # (so word tokens, which no function could average, may be the reference)
    iv = np.stack([np.minimum(iv[:, 0], iv[:, 1]), np.maximum(iv[:, 0], iv[:, 1])], axis=1)
    if _numeric(ft.dtype):
        ft = ft.astype(_float_dtype(ft.dtype), copy=False)
    if len(funcs) > 1:
        ft = np.concatenate([ft] * len(funcs), axis=1)
    return CompSeq(name, keys, offsets, iv, ft, s.metadata, videos=vids)


def _align_other(ref: _Reference, other: CompSeq, name: str, funcs: list[str] | None) -> CompSeq:
    from . import kernels

    common = _float_dtype(np.result_type(ref.iv.dtype, other.intervals.dtype))
    ref_iv = np.ascontiguousarray(ref.iv, dtype=common)
    cand_iv = np.ascontiguousarray(other.intervals, dtype=common)
    eps = common.type(ref.eps)
    seg_start, seg_end, seg_ptr = ref.groups(other)
    ref_off = ref.seq.offsets
    n = ref.seq.n_rows
    count = np.zeros(n, dtype=np.int64)
    if funcs is not None:
        if not _numeric(other.features.dtype):
            raise AlignError(
                f"sequence {name!r} has {other.features.dtype} features (not numbers), which "
                f"{funcs} cannot collapse; make it the reference or align it with collapse=None"
            )
        fshape = other.feature_shape
        D = int(np.prod(fshape))
        acc = _float_dtype(other.features.dtype)
        feats = np.ascontiguousarray(other.features.reshape(other.n_rows, D), dtype=acc)
        codes = np.array([kernels.COLLAPSE_CODES[f] for f in funcs], dtype=np.int64)
        out_iv = np.empty((n, 2), dtype=common)
        out_ft = np.empty((n, len(funcs) * D), dtype=acc)
        kernels.align_collapse(
            ref_iv, ref_off, ref.skip, cand_iv, seg_start, seg_end, seg_ptr, feats, codes, eps, out_iv, out_ft, count
        )
        rows = np.flatnonzero(count)
        keys, vids = ref.keys(rows)
        k = len(rows)
        kernels.compact_rows(out_ft, rows)  # in place: a MOSEI-scale copy costs more than the alignment
        kernels.compact_rows(out_iv, rows)
        # several functions concatenate along the first feature axis, as mmsdk's numpy.concatenate(axis=0) does
        ft = out_ft[:k].reshape(k, len(funcs) * fshape[0], *fshape[1:])
        return CompSeq(name, keys, np.arange(k + 1, dtype=np.int64), out_iv[:k], ft, other.metadata, videos=vids)
    kernels.align_count(ref_iv, ref_off, ref.skip, cand_iv, seg_start, seg_end, seg_ptr, eps, count)
    out_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=out_off[1:])
    total = int(out_off[-1])
    out_iv = np.empty((total, 2), dtype=common)
    out_src = np.empty(total, dtype=np.int64)
    kernels.align_fill(
        ref_iv, ref_off, ref.skip, cand_iv, seg_start, seg_end, seg_ptr, eps, out_off[:-1], out_iv, out_src
    )
    rows = np.flatnonzero(count)
    keys, vids = ref.keys(rows)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(count[rows], out=offsets[1:])
    return CompSeq(name, keys, offsets, out_iv, other.features[out_src], other.metadata, videos=vids)


#: a file collapsed onto the reference is read this many bytes of rows at a time (see :func:`_align_streamed`)
STREAM_BYTES = 64 * 1024 * 1024


def _concat(name: str, parts: list[CompSeq], metadata: dict[str, Any]) -> CompSeq:
    counts = np.concatenate([p.counts() for p in parts])
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return CompSeq(
        name,
        [k for p in parts for k in p.keys_list],
        offsets,
        np.concatenate([p.intervals for p in parts]),
        np.concatenate([p.features for p in parts]),
        metadata,
        videos=[v for p in parts for v in p.videos],
    )


def _align_streamed(
    ref: _Reference, path: str, name: str, videos: set[str], funcs: list[str], progress: bool
) -> CompSeq | None:
    """Collapse the file at ``path`` onto ``ref`` reading about :data:`STREAM_BYTES` of its rows at a time into one
    buffer: consecutive reference entries, all the file's entries of their videos. A CMU-MOSI COVAREP file (600 MB
    of float32 rows) then never sits in memory whole: less memory, and no page of a fresh 600 MB array to fault in.
    The result equals :func:`_align_other` on the whole file (each reference entry sees every candidate row of
    its video, and the parts come in reference order). A file within STREAM_BYTES is read whole, through the
    same handle. None when its features are not numbers (the caller's path reports that)."""
    from .csd import CSDReader

    wanted = {e for e in csd_entries(path) if strip_key(e) in videos}
    with CSDReader(path, videos=wanted) as r:
        if r.ft_dtype.kind == "O":
            return None
        metadata = r.metadata(stacklevel=4)
        if int(r.counts.sum()) * r.row_bytes() <= STREAM_BYTES:
            offsets, iv, ft = r.read(progress=f"read {name}" if progress else False)
            return _align_other(ref, CompSeq(name, r.names, offsets, iv, ft, metadata, source=path), name, funcs)
        by_video: dict[str, list[int]] = {}
        for i, n in enumerate(r.names):
            by_video.setdefault(strip_key(n), []).append(i)
        budget = max(1, STREAM_BYTES // r.row_bytes())
        ref_videos = ref.seq.videos
        batches: list[tuple[int, int, list[int]]] = []  # (first ref entry, end, the file's entries)
        e0, rows, take, seen = 0, 0, [], set()
        for e, v in enumerate(ref_videos):
            if e > 0 and v == ref_videos[e - 1]:  # a video's consecutive reference entries stay in one batch
                continue
            mine = by_video.get(v, [])
            n = int(r.counts[mine].sum()) if mine else 0
            if e > e0 and rows + n > budget and v not in seen:
                batches.append((e0, e, take))
                e0, rows, take, seen = e, 0, [], set()
            if v not in seen:  # its rows once per batch, however its reference entries are ordered
                seen.add(v)
                rows += n
                take.extend(mine)
        batches.append((e0, len(ref_videos), take))
        most = max(int(r.counts[t].sum()) if t else 0 for _, _, t in batches)
        buffers = (np.empty((most, 2), r.iv_dtype), np.empty((most, *r.feature_shape), r.ft_dtype))
        it: Any = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc=f"align {name}", unit=" parts", leave=False, disable=None)
        parts = []
        for e0, e1, take in it:
            offsets, iv, ft = r.read(take, buffers=buffers)
            seq = CompSeq(name, [r.names[i] for i in take], offsets, iv, ft, metadata)
            parts.append(_align_other(ref.part(e0, e1), seq, name, funcs))
    return _concat(name, parts, metadata)


def align(
    reference: str,
    sequences: Mapping[str, CompSeq],
    collapse: Sequence[str] | str | None = ("mean",),
    *,
    eps: float = EPS,
) -> dict[str, CompSeq]:
    """Align every sequence to the rows of ``reference``, as mmsdk's ``mmdataset.align`` does.

    Videos not shared by all sequences are dropped first (:func:`unify`). Output entries are
    ``<reference entry>[<row>]``; a sequence with no kept rows for a reference row has no entry for it.
    ``collapse``: names from ``mean``, ``sum``, ``min``, ``max`` whose outputs are concatenated, or ``None`` to keep
    every clipped row (the label stage).
    """
    if reference not in sequences:
        raise AlignError(f"reference sequence {reference!r} is not among {list(sequences)}")
    funcs = _collapse_codes(collapse)
    seqs = unify(sequences)
    ref = _Reference(seqs[reference], eps)
    return {
        name: (_align_reference(ref, name, funcs) if name == reference else _align_other(ref, s, name, funcs))
        for name, s in seqs.items()
    }


def warm_kernels() -> None:
    """Compile the Numba kernels (or load them from Numba's on-disk cache) for float32 and float64 intervals and
    features, collapsing and not, by aligning two tiny sequences. A test session or a benchmark calls this once so
    that no single alignment pays the JIT time."""
    for iv_dtype in (np.float32, np.float64):
        for ft_dtype in (np.float32, np.float64):
            ref = CompSeq.from_dict("ref", {"v": (np.array([[0, 1], [1, 2]], iv_dtype), np.ones((2, 1), ft_dtype))})
            other = CompSeq.from_dict("x", {"v": (np.array([[0, 0.5], [0.5, 2]], iv_dtype), np.ones((2, 2), ft_dtype))})
            align("ref", {"ref": ref, "x": other}, collapse=("mean",))
        align("ref", {"ref": ref, "x": other}, collapse=None)


# -- impute, nan_to_num -----------------------------------------------------------------------------------------
def impute(reference: str, sequences: Mapping[str, CompSeq], value: float = 0.0) -> dict[str, CompSeq]:
    """Give every sequence an entry for every reference entry: missing ones get the reference's intervals and
    ``value`` features of the sequence's feature shape (mmsdk: numpy.zeros), appended after the existing entries."""
    if reference not in sequences:
        raise AlignError(f"reference sequence {reference!r} is not among {list(sequences)}")
    ref = sequences[reference]
    out = {}
    for name, s in sequences.items():
        if name == reference:
            out[name] = s
            continue
        have = s.index
        missing = [e for e, k in enumerate(ref.keys_list) if k not in have]
        if not missing:
            out[name] = s
            continue
        sub = ref.select(missing)
        iv_dtype = np.result_type(s.intervals.dtype, sub.intervals.dtype)
        # mmsdk's zeros are float64; the values are the same in the sequence's own dtype, which we keep
        fill = np.zeros((sub.n_rows, *s.feature_shape), dtype=s.features.dtype)  # b"" for word tokens
        if value != 0 and _numeric(fill.dtype):
            fill[...] = value
        offsets = np.concatenate([s.offsets, s.offsets[-1] + sub.offsets[1:]])
        out[name] = CompSeq(
            name,
            s.keys_list + sub.keys_list,
            offsets,
            np.concatenate([s.intervals.astype(iv_dtype, copy=False), sub.intervals]),
            np.concatenate([s.features, fill]),
            s.metadata,
            source=s.source,
            videos=s.videos + sub.videos,
        )
    return out


def nan_to_num(obj: Any, nan: float = 0.0, posinf: float = 0.0, neginf: float = 0.0) -> Any:
    """Replace NaN and +-inf features (COVAREP has both) by finite values, zeros by default.

    Works on a :class:`CompSeq`, an array, or (nested) dicts of either; returns new objects. Alignment itself
    propagates NaN and inf exactly as mmsdk does; call this before training.
    """
    if isinstance(obj, CompSeq):
        if not np.issubdtype(obj.features.dtype, np.floating):
            return obj
        return obj.replace(features=np.nan_to_num(obj.features, nan=nan, posinf=posinf, neginf=neginf))
    if isinstance(obj, np.ndarray):
        if np.issubdtype(obj.dtype, np.floating):
            return np.nan_to_num(obj, nan=nan, posinf=posinf, neginf=neginf)
        return obj
    if isinstance(obj, Mapping):
        return {k: nan_to_num(v, nan, posinf, neginf) for k, v in obj.items()}
    raise TypeError(f"nan_to_num takes a CompSeq, an array or a dict of them, not {type(obj).__name__}")


# -- tensors ----------------------------------------------------------------------------------------------------
def get_tensors(
    sequences: Mapping[str, CompSeq],
    seq_len: int,
    folds: Mapping[str, Iterable[str]],
    non_sequences: Iterable[str] = (),
    dtype=np.float64,
    lengths: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Fixed-length tensors per fold, like mmsdk's ``get_tensors(direction=False)`` after :func:`hard_unify`.

    Sequences become (N, seq_len, *feature_shape): zeros first, then the last ``seq_len`` rows. A non-sequence
    (the labels) becomes (N, *feature_shape) from its single row. Segments are taken in the first sequence's order;
    a segment whose video is in no fold is skipped; one in several folds goes to the first. ``ids`` holds the keys.
    ``lengths=True`` adds ``<name>.length`` (N,) int64 for every sequence: its real (unpadded) steps.
    """
    if seq_len < 1:
        raise AlignError(f"seq_len must be at least 1, got {seq_len}")
    seqs = hard_unify(sequences)
    if not seqs:
        raise AlignError("get_tensors needs at least one sequence")
    non_seq = set(non_sequences)
    unknown = non_seq - set(seqs)
    if unknown:
        raise AlignError(f"non-sequence(s) {sorted(unknown)} are not among {list(seqs)}")
    fold_names = list(folds)
    fold_of: dict[str, int] = {}
    for i, f in enumerate(fold_names):
        for vid in folds[f]:
            fold_of.setdefault(str(vid), i)
    first = next(iter(seqs.values()))
    fold_idx = np.array([fold_of.get(v, -1) for v in first.videos], dtype=np.int64)
    skipped = int((fold_idx < 0).sum())
    if skipped:
        warnings.warn(
            f"{skipped} of {len(first)} segments belong to no fold and are left out", UserWarning, stacklevel=2
        )
    videos = set(first.videos)
    for f in fold_names if skipped < len(first) else ():  # (no fold with a segment at all: the caller says so)
        listed = [str(v) for v in folds[f]]  # a fold left empty though it lists ids: they are spelled otherwise
        if listed and not videos.intersection(listed):
            seen, shown = ", ".join(sorted(videos)[:3]), ", ".join(listed[:3]) + (" ..." if len(listed) > 3 else "")
            warnings.warn(
                f"fold {f!r} lists {len(listed)} video id(s) ({shown}) and none is a video of the sequences, so it "
                f"holds no segment; the sequences' video ids look like {seen}",
                UserWarning,
                stacklevel=2,
            )
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, f in enumerate(fold_names):
        sel = np.flatnonzero(fold_idx == i)
        keys = [first.keys_list[j] for j in sel]
        fold: dict[str, np.ndarray] = {}
        for name, s in seqs.items():
            pos = np.fromiter((s.index[k] for k in keys), dtype=np.int64, count=len(keys))
            if name in non_seq:
                counts = s.counts()[pos]
                if len(pos) and not np.all(counts == 1):
                    bad = keys[int(np.flatnonzero(counts != 1)[0])]
                    raise AlignError(
                        f"non-sequence {name!r} has {counts[counts != 1][0]} rows for {bad!r}; "
                        "a non-sequence needs exactly one row per segment"
                    )
                ft = s.features[s.offsets[pos]]
                fold[name] = ft.astype(dtype) if _numeric(ft.dtype) else ft
            else:  # word tokens keep their dtype, padded with empty strings
                fold[name] = _left_pad(s, pos, seq_len, dtype if _numeric(s.features.dtype) else s.features.dtype)
                if lengths:
                    fold[f"{name}.length"] = np.minimum(s.counts()[pos], seq_len)
        fold["ids"] = np.array(keys, dtype=str)
        out[f] = fold
    return out


def _left_pad(s: CompSeq, pos: np.ndarray, seq_len: int, dtype) -> np.ndarray:
    """(len(pos), seq_len, *feature_shape): each entry's last seq_len rows, right-aligned after zeros."""
    out = np.zeros((len(pos), seq_len, *s.feature_shape), dtype=dtype)
    if out.dtype.kind == "O":
        out[...] = b""
    counts = np.minimum(s.counts()[pos], seq_len)
    ends = s.offsets[pos + 1]
    total = int(counts.sum())
    if total:
        sample = np.repeat(np.arange(len(pos)), counts)
        # step within the kept tail: 0..count-1, placed at seq_len - count + step
        step = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        src = np.repeat(ends - counts, counts) + step
        out[sample, seq_len - np.repeat(counts, counts) + step] = s.features[src]
    return out


# -- whole word-level pipeline ----------------------------------------------------------------------------------
def _load(paths: Mapping[str, str | os.PathLike], name: str, videos: set[str], progress: bool) -> CompSeq:
    path = paths[name]
    wanted = {e for e in csd_entries(path) if strip_key(e) in videos}
    seq = read_csd(path, videos=wanted, progress=f"read {name}" if progress else False)
    return seq.replace(name=name)


def _load_in_worker(path: str, name: str, videos: set[str]) -> tuple[CompSeq, list[str]]:
    """:func:`_load` in a worker process; the warnings travel back with the sequence."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seq = _load({name: path}, name, videos, False)
    return seq, [str(w.message) for w in caught if issubclass(w.category, CSDMetadataWarning)]


def read_workers() -> int:
    """Worker processes for reading .csd files by default: ``$MFM_BENCH_READ_WORKERS`` when set, else 1 (read in
    this process). h5py serialises every call within one process, so only a second process decompresses on a
    second core, but each file read there comes back pickled through a pipe: on a 2-core machine, with the
    files of a CMU-MOSEI-sized tenth (320 videos), two workers took 10.2 s against 4.7 s in this process
    (docs/performance.md). More workers pay off with more cores and files whose decompression outweighs that copy;
    set the variable, or pass ``workers``, to use them."""
    value = os.environ.get("MFM_BENCH_READ_WORKERS", "").strip()
    if not value:
        return 1
    try:
        return max(1, int(value))
    except ValueError:
        raise ValueError(f"MFM_BENCH_READ_WORKERS must be a whole number of processes, got {value!r}") from None


class _ReadAhead:
    """Reads files in ``order`` in worker processes, at most ``workers`` ahead of the one asked for, so reading
    overlaps alignment and several files decompress at once; ``get(name)`` returns each one once, in any order.
    With one worker (or one file) it reads in this process. Memory: the files in flight plus the one in use."""

    def __init__(
        self,
        paths: Mapping[str, str | os.PathLike],
        order: list[str],
        videos: set[str],
        progress: bool,
        workers: int | None = None,
    ) -> None:
        self.paths, self.order, self.videos, self.progress = paths, list(order), videos, progress
        self.workers = min(read_workers() if workers is None else max(1, workers), len(self.order))
        self.pending: dict[str, Any] = {}
        self.pool = None
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # forkserver: a clean process, safe when the caller has torch's OpenMP threads running
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))

    def _submit_ahead(self) -> None:
        while self.order and len(self.pending) < self.workers:
            name = self.order.pop(0)
            self.pending[name] = self.pool.submit(_load_in_worker, str(self.paths[name]), name, self.videos)

    def streamable(self, name: str) -> str | None:
        """The path of ``name`` when this process would read it (no worker has it), and it is HDF5; else None."""
        path = str(self.paths[name])
        if self.pool is not None or name in self.pending or path.endswith(".npz"):
            return None
        return path

    def get(self, name: str) -> CompSeq:
        if self.pool is None:
            self.order.remove(name)
            return _load(self.paths, name, self.videos, self.progress)
        if name not in self.pending:  # asked out of order: move it to the front
            self.order.remove(name)
            self.order.insert(0, name)
            self.pending[name] = self.pool.submit(_load_in_worker, str(self.paths[name]), name, self.videos)
        self._submit_ahead()
        seq, caught = self.pending.pop(name).result()
        self._submit_ahead()
        for message in caught:
            warnings.warn(message, CSDMetadataWarning, stacklevel=3)
        return seq

    def close(self) -> None:
        if self.pool is not None:
            for f in self.pending.values():
                f.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def shared_videos(paths: Mapping[str, str | os.PathLike]) -> set[str]:
    """Video ids present in every file, read from the entry names only (no arrays)."""
    sets = [{strip_key(e) for e in csd_entries(p)} for p in paths.values()]
    return set.intersection(*sets) if sets else set()


def align_files(
    paths: Mapping[str, str | os.PathLike],
    reference: str,
    collapse: Sequence[str] | str | None = ("mean",),
    *,
    videos: set[str] | None = None,
    skip: Iterable[str] = (),
    impute_missing: bool = False,
    progress: bool = False,
    eps: float = EPS,
    workers: int | None = None,
    _reader: _ReadAhead | None = None,
) -> Iterator[tuple[str, CompSeq]]:
    """Align .csd files to the rows of ``reference``, reading one file at a time: yields ``(name, aligned)``.

    Names come in ``paths`` order, the reference included, those in ``skip`` left out. Only ``videos`` are read
    (default: the ids every file shares, :func:`shared_videos`). ``impute_missing`` gives each sequence an entry
    for every reference entry (:func:`impute`). The caller may drop each result before asking for the next, so a
    MOSEI-scale run holds the reference and one other sequence in memory, plus up to ``workers`` files being read
    ahead in worker processes (default :func:`read_workers`; 1 reads in this process). Same rules as :func:`align`.
    """
    if reference not in paths:
        raise AlignError(f"reference sequence {reference!r} is not among the given files {list(paths)}")
    funcs = _collapse_codes(collapse)
    if videos is None:
        videos = shared_videos(paths)
    if not videos:
        raise AlignError(f"no video id is shared by all of {list(paths)}")
    skip = set(skip)
    reader = _reader or _ReadAhead(
        paths, [reference] + [n for n in paths if n != reference and n not in skip], videos, progress, workers
    )
    try:
        ref = _Reference(reader.get(reference), eps)
        ref_out = _align_reference(ref, reference, funcs)
        for name in paths:
            if name in skip:
                continue
            if name == reference:
                yield name, ref_out
            else:  # no local name: the previous result is freed while the next one is computed
                yield name, _align_file(ref, ref_out, reader, name, funcs, impute_missing)
    finally:
        if _reader is None:
            reader.close()


def _align_file(
    ref: _Reference, ref_out: CompSeq, reader: _ReadAhead, name: str, funcs: list[str] | None, fill: bool
) -> CompSeq:
    out = None
    path = reader.streamable(name) if funcs is not None else None
    if path is not None:
        out = _align_streamed(ref, path, name, reader.videos, funcs, reader.progress)
    if out is None:
        out = _align_other(ref, reader.get(name), name, funcs)
    return impute(ref_out.name, {ref_out.name: ref_out, out.name: out})[out.name] if fill else out


def prepare_word_level(
    paths: Mapping[str, str | os.PathLike],
    words: str,
    labels: str,
    seq_len: int,
    folds: Mapping[str, Iterable[str]],
    *,
    collapse: Sequence[str] | str = ("mean",),
    impute_missing: bool = True,
    dtype=np.float64,
    clean: bool = False,
    progress: bool = False,
    lengths: bool = False,
    workers: int | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The standard CMU word-level recipe, from .csd files to tensors.

    1. align every sequence to ``words`` with ``collapse`` (mmsdk: ``align(words, [avg])``), one file in memory at
       a time; 2. ``impute(words)`` (zeros where a modality has no frame in a word); 3. align everything to
       ``labels`` without collapse; 4. :func:`hard_unify`; 5. :func:`get_tensors` with ``labels`` as the
       non-sequence. Returns ``{fold: {name: (N, seq_len, d), labels: (N, d), "ids": (N,) keys}}``.
       ``clean=True`` applies :func:`nan_to_num` to the tensors. ``dtype`` float64 is what mmsdk returns.
       ``lengths=True`` adds each sequence's real steps per segment (see :func:`get_tensors`). The files are
       read ahead in ``workers`` processes (see :func:`align_files`).
    """
    paths = {k: Path(v) for k, v in paths.items()}
    for role, name in (("words", words), ("labels", labels)):
        if name not in paths:
            raise AlignError(f"{role} sequence {name!r} is not among the given files {list(paths)}")
    videos = shared_videos(paths)
    order = [words] + [n for n in paths if n not in (words, labels)] + [labels]
    reader = _ReadAhead(paths, order, videos, progress, workers)
    try:
        aligned = dict(
            align_files(
                paths,
                words,
                collapse,
                videos=videos,
                skip=[labels],
                impute_missing=impute_missing,
                progress=progress,
                _reader=reader,
            )
        )
        label_seq = reader.get(labels)
    finally:
        reader.close()
    stage = align(labels, {**aligned, labels: label_seq}, collapse=None)
    tensors = get_tensors(stage, seq_len, folds, non_sequences=[labels], dtype=dtype, lengths=lengths)
    return nan_to_num(tensors) if clean else tensors
