"""``moud``: MOUD, Spanish product-review videos with utterance sentiment (Pérez-Rosas, Mihalcea & Morency, 2013).

No public copy of MOUD's features is pinned: obtain them from the dataset's authors and lay them out like the MFN
folders (``mfn-h5/moud/``: ``audio_{split}.h5``, ``video_{split}.h5``, ``text_{split}_emb.h5``, ``y_{split}.h5``,
key ``d1``, sequences left-padded with zero steps). Labels may be one-hot (N, K) (K-class classification on the
argmax; K = 2: negative, positive, as the MFM paper reports) or one score per sample (binary: positive when > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import RealConfig, RealDataset, h5_dims, mfn_folder_files, mfn_folder_read


@dataclass
class MOUDConfig(RealConfig):
    pass


class MOUD(RealDataset):
    """MOUD Spanish opinion utterances: sentiment classification (MFN folder layout; no public download)."""

    NAME = "moud"
    CONFIG = MOUDConfig
    SUBDIRS = {"mfn-h5": "mfn-h5/moud"}
    CITATION = (
        "Pérez-Rosas, V., Mihalcea, R., Morency, L.-P. (2013). Utterance-Level Multimodal Sentiment Analysis. ACL 2013."
    )
    LICENCE = "research use; obtain from the dataset's authors"
    NOTES = {
        "mfn-h5": "no public copy: obtain MOUD's features from its authors and lay them out like the MFN folders "
        "(audio_*.h5, video_*.h5, text_*_emb.h5, y_*.h5, key d1)"
    }

    def files(self, fmt, modalities, folder=None):
        return mfn_folder_files(self.NAME, modalities)

    def modality_dims(self, fmt, folder):
        return h5_dims(
            folder,
            {
                f.role: f.name
                for f in self.files(fmt, self.modalities)
                if f.name.endswith("_train.h5") and f.role != "labels"
            },
        )

    def read(self, fmt, folder, modalities):
        def to_target(y, path):
            y = np.asarray(y, dtype=np.float64)
            if y.ndim == 2 and y.shape[1] >= 2:
                return y.argmax(1).astype(np.int64)
            return (y.reshape(len(y)) > 0).astype(np.int64)

        return mfn_folder_read(folder, modalities, {}, to_target)

    def task(self):
        """K classes for one-hot labels (N, K), else binary; read from the label file's header, so that the
        spec is known before the data are read."""
        from mfm_bench.contracts import Task

        k = max(2, self._label_width())
        names = (
            ("negative", "positive")
            if k == 2
            else ("negative", "neutral", "positive")
            if k == 3
            else tuple(f"class{i}" for i in range(k))
        )
        return Task("classification", n_classes=k, class_names=names)

    def _label_width(self) -> int:
        import h5py

        path = self.folder / "y_train.h5"
        if not path.is_file():
            from .base import DataMissingError

            raise DataMissingError(f"moud: {path} is missing; the number of classes is read from it")
        from .mfn_h5 import MFNFormatError

        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise MFNFormatError(
                f"moud: {path} cannot be opened as HDF5 ({e}); replace it with the labels file of your MOUD copy"
            ) from None
        with f:
            key = next((k for k in ("d1", "data") if k in f), None)
            if key is None:
                raise MFNFormatError(
                    f"moud: {path} has no dataset named 'd1' or 'data' (it holds {sorted(f.keys())}); store the "
                    "labels under d1, as the MFN folders do: one-hot (N, K) or one score per sample (N,)"
                )
            shape = f[key].shape
        return int(shape[1]) if len(shape) == 2 and shape[1] >= 2 else 2
