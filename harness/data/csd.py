"""CMU-MultimodalSDK computational sequences (.csd) -> word-aligned splits, through :mod:`mfm_bench.align`.

A dataset plugin passes the files (role -> file name) and its folds (split -> video ids); this module calls
``mfm_bench.align.prepare_word_level`` (average every feature over each word's interval, then cut the labelled
segments into ``seq_len`` words) and converts its output to the splits the plugins prepare further.

Roles: ``words`` is the reference sequence that times the words (the word vectors, as in the SDK's recipe), so it
is always read; ``labels`` holds the targets; every other role is a modality. A requested modality without a
file of its own is the reference itself (e.g. text given by the word vectors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

WORDS, LABELS = "words", "labels"


def read_csd_splits(
    folder: Path, files: dict[str, str], modalities: list[str], seq_len: int, folds: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, Any]]:
    """{split: {"inputs": {m: float32 (N, seq_len, D)}, "mask": {m: (N, seq_len)}, "labels": (N, K), "ids"}}."""
    try:
        from mfm_bench.align import prepare_word_level
    except ImportError as e:  # pragma: no cover - depends on the alignment module being installed
        raise RuntimeError(
            "reading .csd files needs mfm_bench.align.prepare_word_level, which this installation "
            "lacks; use the MFN h5 or pickle format, or update mfm-bench"
        ) from e
    paths = {role: str(folder / name) for role, name in files.items()}
    prepared = prepare_word_level(paths=paths, words=WORDS, labels=LABELS, seq_len=seq_len, folds=folds)
    out = {}
    for split in ("train", "valid", "test"):
        fold = prepared[split]
        # a modality without a file of its own is the word reference itself
        inputs = {
            m: np.nan_to_num(
                np.asarray(fold[m if m in files else WORDS], dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0
            )
            for m in modalities
        }
        labels = np.asarray(fold[LABELS], dtype=np.float32)
        labels = labels.reshape(labels.shape[0], -1)
        out[split] = {
            "inputs": inputs,
            "mask": {m: np.any(x != 0, axis=-1) for m, x in inputs.items()},
            "labels": labels,
            "ids": [str(i) for i in fold["ids"]],
        }
    return out
