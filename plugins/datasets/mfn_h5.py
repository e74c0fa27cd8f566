"""Readers for the h5 files of the original MFN/MFM code (github.com/pliang279/MFN).

Two layouts exist:

- CMU-MOSI (``data/`` in that repository): ``X_{split}.h5`` with key ``data``, shape (N, 20, 325) holding all
  three modalities side by side (text = GloVe 0:300, audio = selected COVAREP 300:305, visual = selected FACET
  305:325), and ``y_{split}.h5`` with key ``data``, shape (N,), sentiment in [-3, 3].
- One folder per dataset (``new_data/{mmmo,youtube,pom}/``): ``text_{split}_emb.h5``, ``audio_{split}.h5``,
  ``video_{split}.h5`` and ``y_{split}.h5``, each with one dataset ``d1`` of shape (N, 20, D), float64.

Sequences are left-padded with all-zero steps, so a step is real when any of its features is nonzero.
Splits are ``train``, ``valid`` and ``test``. Modality names follow the project: the ``video`` files are the
``visual`` modality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfm_bench.errors import MfmBenchError

SPLITS = ("train", "valid", "test")
#: Column ranges of each modality inside CMU-MOSI's ``X_{split}.h5``.
MOSI_SLICES = {"text": (0, 300), "audio": (300, 305), "visual": (305, 325)}
#: File name pattern of each modality (and the labels) in the per-dataset folder layout.
FOLDER_FILES = {"text": "text_{split}_emb.h5", "audio": "audio_{split}.h5", "visual": "video_{split}.h5"}
LABEL_FILE = "y_{split}.h5"


class MFNFormatError(MfmBenchError, ValueError):
    """An h5 file that is not what the MFN layout promises (missing key, wrong shape)."""


def read_array(path: Path | str, keys: tuple[str, ...] = ("d1", "data")) -> np.ndarray:
    """The array stored under the first of ``keys`` present in the h5 file ``path``."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise MFNFormatError(f"{path}: cannot be opened as HDF5 ({e}); re-download it with `mfm-bench fetch`") from e
    with f:
        for key in keys:
            if key in f:
                return np.asarray(f[key][()])
        raise MFNFormatError(f"{path}: no dataset named {' or '.join(map(repr, keys))}; it holds {sorted(f.keys())}")


def folder_files(folder: Path, split: str, modalities: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """Paths of the per-dataset folder layout for one split: each modality's file and ``"labels"``."""
    out = {m: folder / FOLDER_FILES[m].format(split=split) for m in modalities}
    out["labels"] = folder / LABEL_FILE.format(split=split)
    return out


def mosi_files(folder: Path, split: str) -> dict[str, Path]:
    """Paths of CMU-MOSI's combined layout for one split: ``"X"`` and ``"labels"``."""
    return {"X": folder / f"X_{split}.h5", "labels": folder / LABEL_FILE.format(split=split)}


def step_mask(x: np.ndarray) -> np.ndarray:
    """(N, T) bool: True where a step has any nonzero feature (the MFN files left-pad with zero steps)."""
    return np.any(x != 0, axis=-1)


def _features(path: Path, x: np.ndarray, n: int | None = None, dim: int | None = None) -> np.ndarray:
    if x.ndim != 3:
        raise MFNFormatError(f"{path}: expected a (N, steps, dim) array, got shape {x.shape}")
    if n is not None and x.shape[0] != n:
        raise MFNFormatError(
            f"{path}: {x.shape[0]} samples but the labels file has {n}; the files come from different copies"
        )
    if dim is not None and x.shape[2] != dim:
        raise MFNFormatError(f"{path}: feature dim {x.shape[2]}, expected {dim}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():  # a handful of COVAREP values are inf/nan in some copies; zero them as the original code did
        x[bad] = 0.0
    return x


def read_folder_split(
    folder: Path, split: str, modalities: list[str] | tuple[str, ...], dims: dict[str, int] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One split of the per-dataset layout: ({modality: float32 (N, T, D)}, raw labels as stored)."""
    files = folder_files(folder, split, modalities)
    labels = read_array(files["labels"])
    n = int(labels.shape[0])
    inputs = {m: _features(files[m], read_array(files[m]), n, (dims or {}).get(m)) for m in modalities}
    return inputs, labels


def read_mosi_split(
    folder: Path, split: str, modalities: list[str] | tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One split of CMU-MOSI's combined layout: ({modality: float32 (N, T, D)}, sentiment (N,))."""
    files = mosi_files(folder, split)
    labels = read_array(files["labels"]).reshape(-1)
    x = read_array(files["X"])
    if x.ndim != 3 or x.shape[2] != 325:
        raise MFNFormatError(f"{files['X']}: expected shape (N, 20, 325), got {x.shape}")
    x = _features(files["X"], x, int(labels.shape[0]))
    return {m: np.ascontiguousarray(x[:, :, a:b]) for m, (a, b) in MOSI_SLICES.items() if m in modalities}, labels
