"""``youtube``: the YouTube opinion dataset (Morency, Mihalcea & Doshi, 2011).

Format: the MFN h5 folder (``mfn-h5/youtube/``): audio 74 (COVAREP), visual 36 (FACET), text 300 (GloVe), 20
word-aligned steps; 173 / 36 / 60 samples. Labels are stored one-hot over three classes (negative, neutral,
positive); the task is 3-class classification on their argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import RealConfig, RealDataset, mfn_folder_files, mfn_folder_read

DIMS = {"text": 300, "audio": 74, "visual": 36}
CLASSES = ("negative", "neutral", "positive")


@dataclass
class YouTubeConfig(RealConfig):
    pass


class YouTube(RealDataset):
    """YouTube opinion videos: 3-class sentiment (negative, neutral, positive)."""

    NAME = "youtube"
    CONFIG = YouTubeConfig
    SUBDIRS = {"mfn-h5": "mfn-h5/youtube"}
    CITATION = (
        "Morency, L.-P., Mihalcea, R., Doshi, P. (2011). Towards Multimodal Sentiment Analysis: Harvesting "
        "Opinions from the Web. ICMI 2011."
    )
    LICENCE = "research use; features as distributed with the MFN code (github.com/pliang279/MFN)"

    def files(self, fmt, modalities, folder=None):
        return mfn_folder_files(self.NAME, modalities)

    def modality_dims(self, fmt, folder):
        return {m: DIMS[m] for m in self.modalities}

    def read(self, fmt, folder, modalities):
        def to_target(y, path):
            y = np.asarray(y, dtype=np.float64)
            if y.ndim != 2 or y.shape[1] != len(CLASSES):
                raise ValueError(f"{path}: expected one-hot labels of shape (N, 3), got {y.shape}")
            if not np.allclose(y.sum(1), 1.0):
                raise ValueError(f"{path}: labels are not one-hot (row sums {np.unique(y.sum(1))})")
            return y.argmax(1).astype(np.int64)

        return mfn_folder_read(folder, modalities, DIMS, to_target)

    def task(self):
        from mfm_bench.contracts import Task

        return Task("classification", n_classes=3, class_names=CLASSES)
