"""Format-independent preparation of real datasets: the in-memory split, sequence length, standardisation.

Every reader (MFN h5, CSD, pickles) produces :class:`SplitArrays`; the dataset plugins then fit the sequence
length, standardise with statistics of the train split only, and hand out :class:`~mfm_bench.contracts.TensorSplit`.

The tensors format (``write_tensors``, ``read_tensors_meta``, ``read_tensors_split``) is what ``mfm-bench prepare``
writes and the ``tensors`` dataset reads (docs/datasets.md, "Your own data").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfm_bench.errors import MfmBenchError


@dataclass
class SplitArrays:
    """One split as NumPy arrays: ``inputs[m]`` float32 (N, T_m, D_m), ``mask[m]`` bool (N, T_m) (True = real step),
    ``target`` (N,) float32 / int64 or (N, K) float32, ``ids`` N strings."""

    inputs: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    target: np.ndarray
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = int(self.target.shape[0])
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        for m, x in self.inputs.items():
            if x.shape[0] != n or self.mask[m].shape != x.shape[:2]:
                raise ValueError(
                    f"modality {m!r}: inputs {x.shape}, mask {self.mask[m].shape}, {n} targets do not match"
                )
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for {n} targets")

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def to_tensor_split(self):
        """The split as a :class:`~mfm_bench.contracts.TensorSplit` (shares memory with the arrays)."""
        import torch

        from mfm_bench.contracts import TensorSplit

        target = torch.from_numpy(np.ascontiguousarray(self.target))
        target = target.long() if self.target.dtype.kind in "iub" else target.float()
        return TensorSplit(
            inputs={m: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for m, x in self.inputs.items()},
            mask={m: torch.from_numpy(np.ascontiguousarray(k, dtype=bool)) for m, k in self.mask.items()},
            target=target,
            ids=list(self.ids),
        )


def fit_seq_len(x: np.ndarray, mask: np.ndarray, seq_len: int, pad: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cut or pad (N, T, D) and its (N, T) mask to ``seq_len`` steps.

    ``pad="left"`` (MFN h5, word-aligned CSD): real steps sit at the end, so keep the last steps and pad in front.
    ``pad="right"`` (pickles of unaligned features): real steps sit at the start, so keep the first steps.
    ``pad="auto"``: left when the last step is real at least as often as the first one.
    """
    n, t, d = x.shape
    if pad == "auto":
        pad = "left" if t == 0 or mask[:, -1].mean() >= mask[:, 0].mean() else "right"
    if t == seq_len:
        return x, mask
    if t > seq_len:
        sl = slice(t - seq_len, t) if pad == "left" else slice(0, seq_len)
        return np.ascontiguousarray(x[:, sl]), np.ascontiguousarray(mask[:, sl])
    xo = np.zeros((n, seq_len, d), dtype=x.dtype)
    mo = np.zeros((n, seq_len), dtype=bool)
    sl = slice(seq_len - t, seq_len) if pad == "left" else slice(0, t)
    xo[:, sl], mo[:, sl] = x, mask
    return xo, mo


def standardise(
    splits: dict[str, SplitArrays], train: str = "train", eps: float = 1e-6
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Z-score every feature in place with the mean and std of the real steps of ``train`` only; padding stays zero.

    A feature that is constant on the training steps is only centred. Returns the statistics
    ``{modality: (mean (D,), std (D,))}`` under key ``"stats"`` for the record.
    """
    stats = {}
    for m, x in splits[train].inputs.items():
        real = x[splits[train].mask[m]]  # (steps, D)
        if real.shape[0] == 0:
            mu, sd = np.zeros(x.shape[-1], np.float64), np.ones(x.shape[-1], np.float64)
        else:
            mu = real.mean(0, dtype=np.float64)
            sd = real.std(0, dtype=np.float64)
            sd = np.where(sd < eps, 1.0, sd)
        stats[m] = (mu.astype(np.float32), sd.astype(np.float32))
        for s in splits.values():
            y = (s.inputs[m] - stats[m][0]) / stats[m][1]
            y[~s.mask[m]] = 0.0
            s.inputs[m] = y.astype(np.float32)
    return {"stats": stats}


# -- the tensors format: what `mfm-bench prepare` writes and the `tensors` dataset reads ----------------------------
TENSORS_FORMAT = "mfm-bench-tensors"
TENSORS_VERSION = 1
META_KEY = "meta.json"


class TensorsFormatError(MfmBenchError, ValueError):
    """A file that is not in the tensors format (docs/datasets.md, "Your own data"); the message names it."""


def write_tensors(path, folds: dict[str, dict[str, np.ndarray]], *, labels: str, meta: dict) -> None:
    """Write ``{split: {name: (N, T, D), name.length: (N,), labels: (N, K), ids: (N,)}}`` in the tensors format,
    atomically: ``<split>/<name>`` arrays, ``<split>/<name>.mask`` (N, T) bool (True = real step, from the
    lengths), ``<split>/<labels>``, ``<split>/ids`` and ``meta.json`` (a JSON string: the layout, the dims and
    ``meta``, e.g. the alignment settings)."""
    import json

    from mfm_bench.io import atomic_path

    arrays: dict[str, np.ndarray] = {}
    sequences: dict[str, dict] = {}
    for split, fold in folds.items():
        for name, arr in fold.items():
            if name == "ids" or name.endswith(".length"):
                continue
            arrays[f"{split}/{name}"] = _storable(arr)
            if name == labels:
                continue
            steps = arr.shape[1]
            length = fold.get(f"{name}.length", np.full(arr.shape[0], steps))
            arrays[f"{split}/{name}.mask"] = np.arange(steps)[None, :] >= steps - np.asarray(length)[:, None]
            sequences[name] = {
                "dim": int(np.prod(arr.shape[2:], dtype=np.int64)),
                "numeric": bool(np.issubdtype(arr.dtype, np.number)),
            }
        arrays[f"{split}/ids"] = np.asarray(fold["ids"], dtype=str)
    first = next(iter(folds.values()))
    header = {
        "format": TENSORS_FORMAT,
        "version": TENSORS_VERSION,
        "splits": list(folds),
        "sizes": {s: int(len(f["ids"])) for s, f in folds.items()},
        "labels": labels,
        "label_dim": int(np.prod(first[labels].shape[1:], dtype=np.int64)),
        "sequences": sequences,
        **meta,
    }
    arrays[META_KEY] = np.array(json.dumps(header))
    with atomic_path(path, suffix=".npz") as tmp:  # the .npz ending keeps numpy from appending its own
        np.savez(tmp, **arrays)


def _storable(arr: np.ndarray) -> np.ndarray:
    """Word tokens read as Python objects become fixed-width strings, so the file loads without pickle."""
    if arr.dtype.kind != "O":
        return arr
    try:
        return arr.astype(bytes)
    except (UnicodeEncodeError, TypeError, ValueError):
        return arr.astype(str)


def read_tensors_meta(path) -> dict:
    """The ``meta.json`` header of a tensors file, reading no array (the spec of the ``tensors`` dataset)."""
    import json
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            if META_KEY not in z.files:
                raise TensorsFormatError(
                    f"{path}: no {META_KEY} entry; write the file with `mfm-bench prepare` "
                    "(docs/datasets.md, 'Your own data')"
                )
            meta = json.loads(str(z[META_KEY]))
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        if isinstance(e, TensorsFormatError):
            raise
        raise TensorsFormatError(f"{path}: not a tensors file written by `mfm-bench prepare` ({e})") from None
    if meta.get("format") != TENSORS_FORMAT or meta.get("version") != TENSORS_VERSION:
        raise TensorsFormatError(
            f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}; this "
            f"version reads {TENSORS_FORMAT!r} version {TENSORS_VERSION}"
        )
    return meta


def read_tensors_split(path, split: str, names: list[str], labels: str) -> dict[str, np.ndarray]:
    """``{name: array, name.mask: (N, T) bool, labels: (N, K), ids: (N,)}`` of one split of a tensors file."""
    keys = [f"{split}/{n}" for n in names] + [f"{split}/{n}.mask" for n in names]
    keys += [f"{split}/{labels}", f"{split}/ids"]
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise TensorsFormatError(f"{path}: missing arrays {missing}")
        return {k.split("/", 1)[1]: z[k] for k in keys}
