"""``pom``: POM, persuasive opinion multimedia movie reviews with personality traits (Park et al., 2014).

Formats, tried in this order by ``format: auto``:

- ``mfn-h5`` (``mfn-h5/pom/``): the MFN folder layout: audio 43 (COVAREP), visual 41 (FACET), text 300 (GloVe),
  ``y_{split}.h5`` with 17 trait scores per sample, each from 1 to 7.
- ``csd`` (``csd/POM/``): CMU-MultimodalSDK sequences word-aligned by :mod:`mfm_bench.align` over the standard
  folds (600 / 100 / 203 videos); ``POM_Labels.csd`` must hold the same 17 scores per video.

The task is multi-target regression over the traits. The MFN files do not name their 17 columns; the targets are
``trait_01`` ... ``trait_17`` in file order unless ``traits`` names them (the MFM paper reports 16 traits:
confident, passionate, voice pleasant, dominant, credible, vivid, expertise, entertaining, reserved, trusting,
relaxed, outgoing, thorough, nervous, persuasive, humorous).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfm_bench.config import option

from .base import (
    RealConfig,
    RealDataset,
    complete_features,
    csd_declared,
    csd_dims,
    csd_read,
    mfn_folder_files,
    mfn_folder_read,
)

DIMS = {"text": 300, "audio": 43, "visual": 41}
N_TRAITS = 17
CSD_DEFAULT = {"text": "glove_vectors", "audio": "COVAREP", "visual": "FACET 4.2"}


@dataclass
class POMConfig(RealConfig):
    traits: list[str] | None = option(
        None, "names of the 17 label columns, in file order (default trait_01 ... trait_17)"
    )
    features: dict = option(
        CSD_DEFAULT, "csd format: modality -> standard feature (glove_vectors, COVAREP, FACET 4.2, OpenFace 2)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.features = complete_features("pom", self.features, CSD_DEFAULT)
        if self.traits is not None and (len(self.traits) != N_TRAITS or len(set(self.traits)) != N_TRAITS):
            raise ValueError(f"traits must name {N_TRAITS} distinct columns, got {len(self.traits)}")


class POM(RealDataset):
    """POM personality traits: multi-target regression over 17 scores in [1, 7] (MFN h5 or CSD)."""

    NAME = "pom"
    CONFIG = POMConfig
    SUBDIRS = {"mfn-h5": "mfn-h5/pom", "csd": "csd/POM"}
    CITATION = (
        "Park, S., Shim, H. S., Chatterjee, M., Sagae, K., Morency, L.-P. (2014). Computational Analysis of "
        "Persuasiveness in Social Multimedia: A Novel Dataset and Multimodal Prediction Approach. ICMI 2014."
    )
    LICENCE = "research use; features as distributed with the MFN code and the CMU-MultimodalSDK"

    def files(self, fmt, modalities, folder=None):
        if fmt == "mfn-h5":
            return mfn_folder_files(self.NAME, modalities)
        return csd_declared(self.NAME, self.cfg.features, modalities)

    def modality_dims(self, fmt, folder):
        return {m: DIMS[m] for m in self.modalities} if fmt == "mfn-h5" else csd_dims(self, folder)

    @classmethod
    def folds(cls):
        from .manifests import folds_of

        return folds_of(cls.NAME)

    @staticmethod
    def _target(y, where):
        y = np.asarray(y, dtype=np.float32).reshape(len(y), -1)
        if y.shape[1] != N_TRAITS:
            raise ValueError(f"{where}: expected {N_TRAITS} trait scores per sample, found {y.shape[1]}")
        return np.ascontiguousarray(y)

    def read(self, fmt, folder, modalities):
        if fmt == "mfn-h5":
            return mfn_folder_read(folder, modalities, DIMS, self._target)
        return csd_read(self, folder, modalities, self._target)

    def task(self):
        from mfm_bench.contracts import Task

        names = tuple(self.cfg.traits) if self.cfg.traits else tuple(f"trait_{i:02d}" for i in range(1, N_TRAITS + 1))
        return Task("multi_regression", range=(1.0, 7.0), targets=names)
