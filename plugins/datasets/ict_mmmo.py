"""``ict-mmmo``: ICT-MMMO, opinions in online movie review videos (Wöllmer et al., 2013).

Format: the MFN h5 folder (``mfn-h5/mmmo/``): audio 74 (COVAREP), visual 36 (FACET), text 300 (GloVe), 20
word-aligned steps; 220 / 40 / 80 samples. The label is a rating from 1 to 5 in steps of 0.5; the original task
binarises it at > 3.5, so a rating of 3.5 is negative (``label: binary``, the default; classes negative,
positive), and regression on 1..5 is also reported (``label: regression``). Source of the threshold:
pliang279/factorized @ 602b160, ``mfm_mmmo.py`` L654-655 (``score`` in ``train_mfm``: ``y_test > 3.5`` and
``predictions > 3.5``; the same at L495-496 in ``train_beta_vae``). That code trains on the rating and thresholds
only to score; ``label: binary`` trains a classifier on the thresholded labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mfm_bench.config import option

from .base import RealConfig, RealDataset, mfn_folder_files, mfn_folder_read

DIMS = {"text": 300, "audio": 74, "visual": 36}
#: a rating above this is positive; 3.5 itself is negative (pliang279/factorized mfm_mmmo.py L654-655)
THRESHOLD = 3.5


@dataclass
class ICTMMMOConfig(RealConfig):
    label: Literal["binary", "regression"] = option(
        "binary", "binary: positive when the rating > 3.5 (the original task); regression: the rating, 1 to 5"
    )


class ICTMMMO(RealDataset):
    """ICT-MMMO movie-review opinions: binary (> 3.5) or regression on the 1..5 rating."""

    NAME = "ict-mmmo"
    CONFIG = ICTMMMOConfig
    SUBDIRS = {"mfn-h5": "mfn-h5/mmmo"}
    CITATION = (
        "Wöllmer, M., Weninger, F., Knaup, T., Schuller, B., Sun, C., Sagae, K., Morency, L.-P. (2013). "
        "YouTube Movie Reviews: Sentiment Analysis in an Audio-Visual Context. IEEE Intelligent Systems 28(3)."
    )
    LICENCE = "research use; features as distributed with the MFN code (github.com/pliang279/MFN)"

    def files(self, fmt, modalities, folder=None):
        return mfn_folder_files(self.NAME, modalities)

    def modality_dims(self, fmt, folder):
        return {m: DIMS[m] for m in self.modalities}

    def read(self, fmt, folder, modalities):
        def to_target(y, path):
            y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
            if y.shape[1] != 1:
                raise ValueError(f"{path}: expected one rating per sample, got shape {y.shape}")
            y = y[:, 0]
            if self.cfg.label == "binary":
                return (y > THRESHOLD).astype(np.int64)
            return y.astype(np.float32)

        return mfn_folder_read(folder, modalities, DIMS, to_target)

    def task(self):
        from mfm_bench.contracts import Task

        if self.cfg.label == "binary":
            return Task("classification", n_classes=2, class_names=("negative", "positive"))
        return Task("regression", range=(1.0, 5.0))
