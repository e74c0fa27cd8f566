"""``iemocap``: IEMOCAP dyadic sessions, four emotions (Busso et al., 2008), as processed pickles.

Format ``pkl`` (``pkl/``): the Multimodal Transformer's ``iemocap_data.pkl`` (aligned, 20 steps) or
``iemocap_data_noalign.pkl`` (``aligned: false``): text 300, audio 74, vision 35, and ``labels`` of shape
(N, 4, 2), one binary label (one-hot: not present, present) for each of neutral, happy, sad and angry, in that order.

Representation: an utterance may carry more than one of the four emotions, so each emotion is its own binary
task, as the field reports them: ``emotion: happy`` (the default) gives two classes (``not happy``, ``happy``).
Run the four as four datasets of a suite to report all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mfm_bench.config import option

from .base import RealConfig, RealDataset, first_present, from_raw, local_files

PKL_NAMES = {True: ["iemocap_data.pkl"], False: ["iemocap_data_noalign.pkl"]}
EMOTIONS = ("neutral", "happy", "sad", "angry")  # the order of the labels' second axis


@dataclass
class IEMOCAPConfig(RealConfig):
    emotion: Literal["neutral", "happy", "sad", "angry"] = option(
        "happy", "which emotion's binary task (present or not)"
    )
    aligned: bool = option(True, "the word-aligned pickle or the unaligned one")


class IEMOCAP(RealDataset):
    """IEMOCAP four emotions, one binary task per emotion (processed pickle)."""

    NAME = "iemocap"
    CONFIG = IEMOCAPConfig
    SUBDIRS = {"pkl": "pkl"}
    CITATION = (
        "Busso, C., Bulut, M., Lee, C.-C., Kazemzadeh, A., Mower, E., Kim, S., Chang, J. N., Lee, S., "
        "Narayanan, S. S. (2008). IEMOCAP: Interactive Emotional Dyadic Motion Capture Database. "
        "Language Resources and Evaluation 42(4)."
    )
    LICENCE = "IEMOCAP licence of USC SAIL (on request, research use)"
    NOTES = {"pkl": "the Multimodal Transformer's processed IEMOCAP; IEMOCAP itself is licensed by USC SAIL on request"}

    def files(self, fmt, modalities, folder=None):
        return local_files([first_present(folder, PKL_NAMES[self.cfg.aligned])])

    def read(self, fmt, folder, modalities):
        from .mult_pkl import read_pickle_splits

        path = folder / self.files(fmt, modalities, folder)[0].name
        k = EMOTIONS.index(self.cfg.emotion)

        def to_target(labels, split):
            y = np.asarray(labels)
            if y.ndim == 3 and y.shape[1:] == (4, 2):
                return y[:, k].argmax(-1).astype(np.int64)
            if y.ndim == 2 and y.shape[1] == 4:  # already one 0/1 per emotion
                return (y[:, k] > 0.5).astype(np.int64)
            raise ValueError(f"{path} ({split}): expected labels of shape (N, 4, 2) or (N, 4), got {y.shape}")

        return from_raw(read_pickle_splits(path, modalities), to_target)

    def task(self):
        from mfm_bench.contracts import Task

        e = self.cfg.emotion
        return Task("classification", n_classes=2, class_names=(f"not {e}", e))
