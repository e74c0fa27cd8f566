"""``cmu-mosi``: CMU-MOSI, opinion segments of YouTube monologues with sentiment in [-3, 3] (Zadeh et al., 2016).

Three formats, tried in this order by ``format: auto``:

- ``mfn-h5`` (``mfn-h5/mosi/``): ``X_{split}.h5`` (N, 20, 325) = text 300 (GloVe) + audio 5 (selected COVAREP)
  + visual 20 (selected FACET), ``y_{split}.h5`` sentiment; 1284 / 229 / 686 segments.
- ``csd`` (``csd/CMU_MOSI/``): the CMU-MultimodalSDK computational sequences, word-aligned by
  :mod:`mfm_bench.align` (``features`` picks the file per modality) over the standard folds (52 / 10 / 31 videos).
- ``pkl`` (``pkl/``): the Multimodal Transformer's ``mosi_data.pkl`` (aligned, 50 steps) or
  ``mosi_data_noalign.pkl`` (``aligned: false``), or MMSA's ``aligned_50.pkl`` / ``unaligned_50.pkl``.

The task is regression of the sentiment score in [-3, 3]; the metrics add the field's binary and 7-class views.
"""

from __future__ import annotations

from dataclasses import dataclass

from mfm_bench.config import option

from .base import (
    SPLITS,
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

PKL_NAMES = {True: ["mosi_data.pkl", "aligned_50.pkl"], False: ["mosi_data_noalign.pkl", "unaligned_50.pkl"]}
CSD_DEFAULT = {"text": "glove_vectors", "audio": "COVAREP", "visual": "FACET 4.1"}


@dataclass
class MOSIConfig(RealConfig):
    aligned: bool = option(True, "pkl format: the word-aligned pickle (50 steps) or the unaligned one")
    features: dict = option(
        CSD_DEFAULT,
        "csd format: modality -> standard feature (glove_vectors, COVAREP, FACET 4.1, FACET 4.2, OpenFace 2)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.features = complete_features("cmu-mosi", self.features, CSD_DEFAULT)


class CMUMOSI(RealDataset):
    """CMU-MOSI sentiment regression in [-3, 3] (MFN h5, CSD or processed pickle)."""

    NAME = "cmu-mosi"
    CONFIG = MOSIConfig
    SUBDIRS = {"mfn-h5": "mfn-h5/mosi", "csd": "csd/CMU_MOSI", "pkl": "pkl"}
    CITATION = (
        "Zadeh, A., Zellers, R., Pincus, E., Morency, L.-P. (2016). Multimodal Sentiment Intensity Analysis in "
        "Videos: Facial Gestures and Verbal Messages. IEEE Intelligent Systems 31(6)."
    )
    LICENCE = "research use; see the CMU-MultimodalSDK terms"
    NOTES = {
        "pkl": (
            "processed pickles of the Multimodal Transformer or MMSA projects; no pinned public copy, "
            "obtain them from those projects"
        )
    }

    def files(self, fmt, modalities, folder=None):
        if fmt == "mfn-h5":
            from mfm_bench.contracts import DataFile

            from .manifests import mfn_sources

            pinned = mfn_sources(self.NAME)
            names = [(f"{k}_{s}.h5", "labels" if k == "y" else "all") for s in SPLITS for k in ("X", "y")]
            return [DataFile(n, role, pinned[n][0], git_blob=pinned[n][1], size=pinned[n][2]) for n, role in names]
        if fmt == "pkl":
            return local_files([first_present(folder, PKL_NAMES[self.cfg.aligned])])
        return csd_declared(self.NAME, self.cfg.features, modalities)

    def modality_dims(self, fmt, folder):
        if fmt == "mfn-h5":
            from .mfn_h5 import MOSI_SLICES

            return {m: b - a for m, (a, b) in MOSI_SLICES.items()}
        return csd_dims(self, folder) if fmt == "csd" else None

    @classmethod
    def folds(cls):
        from .manifests import folds_of

        return folds_of(cls.NAME)

    def read(self, fmt, folder, modalities):
        if fmt == "mfn-h5":
            from mfm_bench.data.prepare import SplitArrays

            from .mfn_h5 import read_mosi_split, step_mask

            out = {}
            for split in SPLITS:
                inputs, y = read_mosi_split(folder, split, modalities)
                out[split] = SplitArrays(
                    inputs,
                    {m: step_mask(x) for m, x in inputs.items()},
                    sentiment_labels(y, folder / f"y_{split}.h5"),
                    [f"{split}-{i:05d}" for i in range(len(y))],
                )
            return out
        if fmt == "pkl":
            from .mult_pkl import read_pickle_splits

            path = folder / self.files(fmt, modalities, folder)[0].name
            return from_raw(read_pickle_splits(path, modalities), lambda y, s: sentiment_labels(y, f"{path} ({s})"))
        return csd_read(self, folder, modalities, sentiment_labels)

    def task(self):
        from mfm_bench.contracts import Task

        return Task("regression", range=(-3.0, 3.0), metrics="cmu-sentiment")
