"""Processed pickles of the Multimodal Transformer (MulT) and MMSA projects, read without running their code.

A pickle can execute arbitrary code when loaded, so :func:`safe_load` uses an unpickler that resolves only the
globals NumPy arrays and plain containers need (array reconstruction, dtypes, scalars, ``OrderedDict``...) and
refuses every other one with :class:`UnsafePickleError`, naming the file and the refused global.

Layout: ``{"train"|"valid"|"test": {"text", "audio", "vision": (N, T, D), "labels" (MulT) or
"regression_labels" (MMSA), "id", optional "audio_lengths", "vision_lengths"}}``. Aligned variants have the same T
(50) for every modality; unaligned ones differ per modality.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MfmBenchError

#: (module, name) pairs a data pickle may reference. Everything else is refused.
ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "bytearray"),
    ("builtins", "slice"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 2 store bytes
}
#: NumPy scalar types (numpy.float64 ...) are plain data too.
_NUMPY_SCALARS = {"bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                  "float16", "float32", "float64", "longdouble", "complex64", "complex128", "str_", "bytes_"}
#: NumPy dtype classes (numpy.dtypes.Float64DType ...) pickled by NumPy 2.
_NUMPY_DTYPES_MODULE = "numpy.dtypes"


class UnsafePickleError(MfmBenchError, pickle.UnpicklingError):
    """The pickle references a global outside the allow-list (it could run code when loaded)."""


class PickleFormatError(MfmBenchError, ValueError):
    """A pickle that loads safely but is not laid out as a processed multimodal dataset."""


class _Restricted(pickle.Unpickler):
    def __init__(self, file, source: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: NumPy arrays pickled by Python 2
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol-2 names of Python 2 builtins
        ok = (module, name) in ALLOWED
        ok = ok or (module == "numpy" and name in _NUMPY_SCALARS)
        ok = ok or (module == _NUMPY_DTYPES_MODULE and name.endswith("DType"))
        if not ok:
            raise UnsafePickleError(
                f"{self.source}: refused to load global {module}.{name}: data pickles may hold only NumPy arrays and "
                f"plain containers. This file may run code when loaded; do not open it with pickle.load, and get a "
                f"clean copy of the data"
            )
        return super().find_class(module, name)


def safe_load(path: Path | str) -> Any:
    """Load ``path`` allowing only NumPy arrays and plain containers (see module docstring)."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return _Restricted(f, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
            raise PickleFormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e


#: names in the pickles -> project modality names
MODALITY_KEYS = {"text": "text", "audio": "audio", "visual": "vision"}
LENGTH_KEYS = {"audio": "audio_lengths", "visual": "vision_lengths"}


def _ids(raw: Any, n: int, split: str) -> list[str]:
    if raw is None:
        return [f"{split}-{i:05d}" for i in range(n)]
    arr = np.asarray(raw)
    if arr.shape[0] != n:
        return [f"{split}-{i:05d}" for i in range(n)]
    out = []
    for row in arr:
        row = np.atleast_1d(row)
        parts = [p.decode() if isinstance(p, bytes) else str(p) for p in row.tolist()]
        out.append("_".join(parts) if len(parts) > 1 else parts[0])
    return out


def read_pickle_splits(path: Path, modalities: list[str]) -> dict[str, dict[str, Any]]:
    """{split: {"inputs": {m: float32 (N, T, D)}, "mask": {m: bool (N, T)}, "labels": array, "ids": [str]}}."""
    data = safe_load(path)
    if not isinstance(data, dict) or not all(s in data for s in ("train", "valid", "test")):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise PickleFormatError(f"{path}: expected a dict with train, valid and test; found {keys}")
    out = {}
    for split in ("train", "valid", "test"):
        d = data[split]
        label_key = next((k for k in ("labels", "regression_labels") if k in d), None)
        if label_key is None:
            raise PickleFormatError(f"{path}: split {split!r} has no 'labels' or 'regression_labels' (keys {sorted(d)})")
        labels = np.asarray(d[label_key])
        n = labels.shape[0]
        inputs, mask = {}, {}
        for m in modalities:
            key = MODALITY_KEYS[m]
            if key not in d:
                raise PickleFormatError(f"{path}: split {split!r} has no {key!r} array for modality {m!r} (keys {sorted(d)})")
            x = np.asarray(d[key], dtype=np.float32)
            if x.ndim != 3 or x.shape[0] != n:
                raise PickleFormatError(f"{path}: {split}.{key} has shape {x.shape}, expected ({n}, T, D)")
            x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)  # MulT's CMU-MOSEI audio holds -inf
            lk = LENGTH_KEYS.get(m)
            if lk in d:
                lengths = np.asarray(d[lk]).reshape(-1)
                mask[m] = np.arange(x.shape[1])[None, :] < lengths[:, None]
            else:
                mask[m] = np.any(x != 0, axis=-1)
            inputs[m] = x
        out[split] = {"inputs": inputs, "mask": mask, "labels": labels, "ids": _ids(d.get("id"), n, split)}
    return out
