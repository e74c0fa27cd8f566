"""``cmu-mosei``: CMU-MOSEI, 23,453 opinion segments from 1,000 speakers (Zadeh et al., 2018).

Formats, tried in this order by ``format: auto``:

- ``csd`` (``csd/CMU_MOSEI/``): CMU-MultimodalSDK sequences (GloVe 300, COVAREP 74, FACET 4.2 35 or OpenFace 2),
  word-aligned by :mod:`mfm_bench.align` over the standard folds (video ids from the SDK's list).
  ``CMU_MOSEI_Labels.csd`` holds sentiment in [-3, 3] then six emotion intensities in [0, 3]
  (happy, sad, anger, surprise, disgust, fear).
- ``pkl`` (``pkl/``): the Multimodal Transformer's ``mosei_senti_data.pkl`` / ``mosei_senti_data_noalign.pkl`` or
  MMSA's ``aligned_50.pkl`` / ``unaligned_50.pkl`` (sentiment only).

``label: sentiment`` (default) is regression in [-3, 3]; ``label: emotions`` is multi-target regression of the six
emotion intensities (CSD only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mfm_bench.config import option

from .base import (
    RealConfig,
    RealDataset,
    complete_features,
    csd_declared,
    csd_dims,
    csd_read,
    first_present,
    from_raw,
    local_files,
)
from .sentiment import sentiment_labels

PKL_NAMES = {
    True: ["mosei_senti_data.pkl", "aligned_50.pkl"],
    False: ["mosei_senti_data_noalign.pkl", "unaligned_50.pkl"],
}
CSD_DEFAULT = {"text": "glove_vectors", "audio": "COVAREP", "visual": "FACET 4.2"}
EMOTIONS = ("happy", "sad", "anger", "surprise", "disgust", "fear")


@dataclass
class MOSEIConfig(RealConfig):
    label: Literal["sentiment", "emotions"] = option(
        "sentiment", "sentiment: regression in [-3, 3]; emotions: the six emotion intensities (csd format only)"
    )
    aligned: bool = option(True, "pkl format: the word-aligned pickle (50 steps) or the unaligned one")
    features: dict = option(
        CSD_DEFAULT, "csd format: modality -> standard feature (glove_vectors, COVAREP, FACET 4.2, OpenFace 2)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.features = complete_features("cmu-mosei", self.features, CSD_DEFAULT)


class CMUMOSEI(RealDataset):
    """CMU-MOSEI sentiment regression in [-3, 3], or its six emotions (CSD or processed pickle)."""

    NAME = "cmu-mosei"
    CONFIG = MOSEIConfig
    SUBDIRS = {"csd": "csd/CMU_MOSEI", "pkl": "pkl"}
    CITATION = (
        "Zadeh, A., Liang, P. P., Poria, S., Cambria, E., Morency, L.-P. (2018). Multimodal Language Analysis in "
        "the Wild: CMU-MOSEI Dataset and Interpretable Dynamic Fusion Graph. ACL 2018."
    )
    LICENCE = "research use; see the CMU-MultimodalSDK terms"
    NOTES = {
        "pkl": (
            "processed pickles of the Multimodal Transformer or MMSA projects; no pinned public copy, "
            "obtain them from those projects"
        )
    }

    def files(self, fmt, modalities, folder=None):
        if fmt == "pkl":
            return local_files([first_present(folder, PKL_NAMES[self.cfg.aligned])])
        return csd_declared(self.NAME, self.cfg.features, modalities)

    def modality_dims(self, fmt, folder):
        return csd_dims(self, folder) if fmt == "csd" else None

    @classmethod
    def folds(cls):
        from .manifests import folds_of

        return folds_of(cls.NAME)

    def _target(self, labels, where):
        y = np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)
        if self.cfg.label == "sentiment":
            return sentiment_labels(y[:, :1], where)
        if y.shape[1] != 1 + len(EMOTIONS):
            raise ValueError(
                f"{where}: label: emotions needs sentiment + 6 emotions per sample, found {y.shape[1]} "
                "values (the processed pickles hold sentiment only; use the csd format)"
            )
        return np.ascontiguousarray(y[:, 1:])

    def read(self, fmt, folder, modalities):
        if fmt == "pkl":
            from .mult_pkl import read_pickle_splits

            path = folder / self.files(fmt, modalities, folder)[0].name
            return from_raw(read_pickle_splits(path, modalities), lambda y, s: self._target(y, f"{path} ({s})"))
        return csd_read(self, folder, modalities, self._target)

    def task(self):
        from mfm_bench.contracts import Task

        if self.cfg.label == "emotions":
            return Task("multi_regression", range=(0.0, 3.0), targets=EMOTIONS)
        return Task("regression", range=(-3.0, 3.0), metrics="cmu-sentiment")
