"""The processed pickles of the Multimodal Transformer (MulT) and MMSA projects, loaded by
:func:`mfm_bench.data.pkl.safe_load` (no code runs).

Layout: ``{"train"|"valid"|"test": {"text", "audio", "vision": (N, T, D), "labels" (MulT) or
"regression_labels" (MMSA), "id", optional "audio_lengths", "vision_lengths"}}``. Aligned variants have the same T
(50) for every modality; unaligned ones differ per modality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mfm_bench.data.pkl import PickleFormatError, safe_load

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
            raise PickleFormatError(
                f"{path}: split {split!r} has no 'labels' or 'regression_labels' (keys {sorted(d)})"
            )
        labels = np.asarray(d[label_key])
        n = labels.shape[0]
        inputs, mask = {}, {}
        for m in modalities:
            key = MODALITY_KEYS[m]
            if key not in d:
                raise PickleFormatError(
                    f"{path}: split {split!r} has no {key!r} array for modality {m!r} (keys {sorted(d)})"
                )
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
