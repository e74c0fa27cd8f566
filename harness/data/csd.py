"""CMU-MultimodalSDK computational sequences (.csd) -> word-aligned splits, through :mod:`mfm_bench.align`.

The dataset plugins name the standard files (:data:`mfm_bench.data.manifests.CSD_FILES`) and folds
(``plugins/datasets/folds/*.json``); this module maps modalities to files, calls
``mfm_bench.align.prepare_word_level`` (average every feature over each word's interval, then cut the labelled
segments into ``seq_len`` words) and converts its output to the splits the plugins prepare further.

The word-vector sequence (GloVe, ``glove_vectors``) is the reference that times the words, as in the SDK's recipe,
so it is always read, and it is the ``text`` modality when text is requested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .manifests import CSD_FILES, csd_local_name

WORDS, LABELS = "words", "labels"


def folds_of(dataset: str) -> dict[str, list[str]]:
    """The standard folds of ``dataset`` (video ids per split) from ``plugins/datasets/folds/<dataset>.json``."""
    from importlib import resources

    name = dataset.replace("-", "_") + ".json"
    ref = resources.files("mfm_bench.plugins.datasets") / "folds" / name
    data = json.loads(ref.read_text())
    return {s: list(data[s]) for s in ("train", "valid", "test")}


def csd_file_names(dataset: str, features: dict[str, str]) -> dict[str, str]:
    """{role: local file name}: ``words`` (the word-vector sequence, which times the words and is the text
    modality), each other modality's feature file, and ``labels``."""
    table = CSD_FILES[dataset]
    chosen = {"text": features.get("text", "glove_vectors"), **{m: f for m, f in features.items() if m != "text"}}
    out = {}
    for modality, feature in chosen.items():
        if feature not in table or feature in (WORDS, LABELS):
            known = sorted(k for k in table if k not in (WORDS, LABELS))
            raise KeyError(f"{dataset}: no standard CSD feature {feature!r} for {modality}; known: {known}")
        out[WORDS if modality == "text" else modality] = csd_local_name(table[feature])
    out[LABELS] = csd_local_name(table[LABELS])
    return out


def read_csd_splits(folder: Path, files: dict[str, str], modalities: list[str], seq_len: int,
                    folds: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """{split: {"inputs": {m: float32 (N, seq_len, D)}, "mask": {m: (N, seq_len)}, "labels": (N, K), "ids"}}."""
    try:
        from mfm_bench.align import prepare_word_level
    except ImportError as e:  # pragma: no cover - depends on the alignment module being installed
        raise RuntimeError("reading .csd files needs mfm_bench.align.prepare_word_level, which this installation "
                           "lacks; use the MFN h5 or pickle format, or update mfm-bench") from e
    paths = {role: str(folder / name) for role, name in files.items()}
    prepared = prepare_word_level(paths=paths, words=WORDS, labels=LABELS, seq_len=seq_len, folds=folds)
    out = {}
    for split in ("train", "valid", "test"):
        fold = prepared[split]
        # text is its own sequence when one is given, else the word-vector reference itself
        inputs = {m: np.nan_to_num(np.asarray(fold[m if m in fold or m != "text" else WORDS], dtype=np.float32), nan=0.0,
                                   posinf=0.0, neginf=0.0)
                  for m in modalities}
        labels = np.asarray(fold[LABELS], dtype=np.float32)
        labels = labels.reshape(labels.shape[0], -1)
        out[split] = {
            "inputs": inputs,
            "mask": {m: np.any(x != 0, axis=-1) for m, x in inputs.items()},
            "labels": labels,
            "ids": [str(i) for i in fold["ids"]],
        }
    return out
