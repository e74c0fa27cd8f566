"""Word-level alignment of CMU computational sequences, compatible with the CMU-MultimodalSDK (mmsdk).

``read_csd``/``write_csd`` handle .csd files (``write_npz``/``read_npz`` a flat .npz form); ``align``
(``align_files``: file by file), ``impute``, ``unify``,
``hard_unify``, ``get_tensors`` and ``prepare_word_level`` reproduce mmsdk's pipeline with Numba kernels
(docs/align.md). numba is imported only when an alignment runs.
"""

from __future__ import annotations

from .csd import (
    METADATA_KEYS,
    CompSeq,
    CSDFormatError,
    CSDMetadataWarning,
    Entry,
    complete_metadata,
    csd_entries,
    read_csd,
    strip_key,
)
from .output import read_npz, write_csd, write_npz
from .pipeline import (
    COLLAPSE_FUNCTIONS,
    EPS,
    AlignError,
    align,
    align_files,
    get_tensors,
    hard_unify,
    impute,
    nan_to_num,
    prepare_word_level,
    shared_videos,
    unify,
)

__all__ = [
    "METADATA_KEYS",
    "CompSeq",
    "CSDFormatError",
    "CSDMetadataWarning",
    "Entry",
    "complete_metadata",
    "csd_entries",
    "read_csd",
    "read_npz",
    "strip_key",
    "write_csd",
    "write_npz",
    "COLLAPSE_FUNCTIONS",
    "EPS",
    "AlignError",
    "align",
    "align_files",
    "get_tensors",
    "hard_unify",
    "impute",
    "nan_to_num",
    "prepare_word_level",
    "shared_videos",
    "unify",
]
