"""A plain NumPy transcription of mmsdk's alignment rules: the test oracle and the benchmark's baseline.

Deliberately simple: sequences are ``{name: {key: (intervals, features)}}`` dicts of small arrays, and every
reference row scans all of its video's candidate rows with vectorised masks, as mmsdk's ``__intersect_and_copy``
does. Only the arithmetic that decides the answer is kept identical; nothing here is tuned for speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

EPS = 1e-5

Data = dict[str, tuple[np.ndarray, np.ndarray]]

COLLAPSE: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    # mmsdk's examples average with numpy.average(features, axis=0)
    "mean": lambda intervals, features: np.average(features, axis=0),
    "sum": lambda intervals, features: np.sum(features, axis=0),
    "min": lambda intervals, features: np.min(features, axis=0),
    "max": lambda intervals, features: np.max(features, axis=0),
}


def _strip(key: str) -> str:
    return key.split("[", 1)[0]


def unify(data: Mapping[str, Data]) -> dict[str, Data]:
    common = set.intersection(*[{_strip(k) for k in d} for d in data.values()])
    return {n: {k: v for k, v in d.items() if _strip(k) in common} for n, d in data.items()}


def hard_unify(data: Mapping[str, Data]) -> dict[str, Data]:
    common = set.intersection(*[set(d) for d in data.values()])
    return {n: {k: v for k, v in d.items() if k in common} for n, d in data.items()}


def _candidates(d: Data) -> Data:
    """Per video: all entries concatenated in entry order, stable-sorted by start (mmsdk's pre-alignment)."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for k, (iv, ft) in d.items():
        parts.setdefault(_strip(k), []).append((iv, ft))
    out = {}
    for vid, p in parts.items():
        iv = np.concatenate([a for a, _ in p], axis=0) if len(p) > 1 else p[0][0]
        ft = np.concatenate([b for _, b in p], axis=0) if len(p) > 1 else p[0][1]
        order = np.argsort(iv[:, 0], kind="stable")
        if np.any(order != np.arange(len(order))):  # (no copy when already in order: MOSEI-scale memory)
            iv, ft = iv[order], ft[order]
        out[vid] = (iv, ft)
    return out


def intersect(ref_row: np.ndarray, iv: np.ndarray, ft: np.ndarray, eps: float = EPS):
    """The candidate rows overlapping ``ref_row``, clipped to it, zero-length clips dropped."""
    dt = np.result_type(ref_row.dtype, iv.dtype)
    r0, r1 = ref_row.astype(dt)
    s = iv.astype(dt)
    e = dt.type(eps)
    hit = ((r1 - s[:, 0]) > -e) & ((s[:, 1] - r0) > -e)
    clipped = np.stack([np.maximum(s[hit, 0], r0), np.minimum(s[hit, 1], r1)], axis=1)
    feats = ft[hit]
    keep = np.abs(clipped[:, 0] - clipped[:, 1]) > e
    return clipped[keep], feats[keep]


def _collapse(iv: np.ndarray, ft: np.ndarray, funcs: list[Callable]):
    new_iv = np.array([[iv.min(), iv.max()]])
    new_ft = np.concatenate([np.asarray(f(iv, ft)) for f in funcs], axis=0)
    return new_iv, new_ft[None]


def align(
    reference: str, data: Mapping[str, Data], collapse: Iterable[str] | None = ("mean",), eps: float = EPS
) -> dict[str, Data]:
    funcs = None if collapse is None else [COLLAPSE[c] for c in collapse]
    data = unify(data)
    cands = {n: _candidates(d) for n, d in data.items() if n != reference}
    out: dict[str, Data] = {n: {} for n in data}
    for key, (riv, rft) in data[reference].items():
        for i in range(riv.shape[0]):
            row = riv[i, :]
            if abs(row[0] - row[1]) < row.dtype.type(eps):
                continue
            for n in data:
                if n == reference:
                    iv, ft = riv[i, :][None, :], rft[i][None]
                else:
                    iv, ft = intersect(row, *cands[n][_strip(key)], eps=eps)
                if iv.shape[0] == 0:
                    continue
                if funcs is not None:
                    iv, ft = _collapse(iv, ft, funcs)
                out[n][f"{key}[{i}]"] = (iv, ft)
    return out


def impute(reference: str, data: Mapping[str, Data]) -> dict[str, Data]:
    out = {n: dict(d) for n, d in data.items()}
    for n, d in out.items():
        if n == reference or not d:
            continue
        dims = list(next(iter(d.values()))[1].shape[1:])
        for key, (riv, _) in data[reference].items():
            if key not in d:
                d[key] = (riv, np.zeros([riv.shape[0]] + dims))
    return out


def get_tensors(
    data: Mapping[str, Data], seq_len: int, folds: Mapping[str, Iterable[str]], non_sequences: Iterable[str] = ()
) -> dict[str, dict[str, np.ndarray]]:
    data = hard_unify(data)
    non_seq = set(non_sequences)
    names = list(data)
    fold_sets = {f: set(v) for f, v in folds.items()}
    out = {f: {n: [] for n in names} | {"ids": []} for f in folds}
    for key in data[names[0]]:
        fold = next((f for f, s in fold_sets.items() if _strip(key) in s), None)
        if fold is None:
            continue
        out[fold]["ids"].append(key)
        for n in names:
            ft = data[n][key][1]
            if n in non_seq:
                out[fold][n].append(ft[0])
            else:
                padded = np.concatenate([np.zeros([seq_len] + list(ft.shape[1:])), ft], axis=0)[-seq_len:]
                out[fold][n].append(padded)
    result = {}
    for f, arrays in out.items():
        result[f] = {}
        for n in names:
            dims = list(next(iter(data[n].values()))[1].shape[1:])
            shape = dims if n in non_seq else [seq_len] + dims
            result[f][n] = np.array(arrays[n]) if arrays[n] else np.zeros([0] + shape)
        result[f]["ids"] = np.array(out[f]["ids"], dtype=str)
    return result


def write_csd(path, seq) -> None:
    """The plain h5py writer (high-level calls, default file format, one group and two datasets per entry): what
    ``mfm-bench align`` wrote before its low-level writer, kept as the reference that writer is checked and timed
    against. ``seq`` is a :class:`~mfm_bench.align.csd.CompSeq`."""
    import json

    import h5py

    from .csd import complete_metadata

    with h5py.File(path, "w") as h5:
        root = h5.create_group(seq.name)
        data = root.create_group("data")
        for e in range(len(seq)):
            g = data.create_group(seq.keys_list[e])
            a, b = seq.offsets[e], seq.offsets[e + 1]
            g.create_dataset("features", data=seq.features[a:b])
            g.create_dataset("intervals", data=seq.intervals[a:b])
        meta = root.create_group("metadata")
        for k, v in complete_metadata(seq).items():
            ds = meta.create_dataset(k, (1,), dtype=h5py.string_dtype())
            ds[0] = json.dumps(v, default=str)
