"""``tensors``: train on what ``mfm-bench prepare`` writes (your own .csd files, aligned and cut into segments).

The file is the tensors format of :mod:`mfm_bench.data.prepare` (docs/datasets.md, "Your own data"): per split,
``<split>/<sequence>`` (N, T, D), ``<split>/<sequence>.mask`` (N, T), ``<split>/<labels>`` (N, K) and
``<split>/ids``, plus ``meta.json`` with the dims, sizes and alignment settings. The spec comes from ``meta.json``
alone, so ``validate`` reads no array. The file holds no task: the params say what the labels are.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mfm_bench.config import option
from mfm_bench.errors import DeprecatedParamWarning, MfmBenchError

NAME = "tensors"
TASKS = ("regression", "classification", "multi_regression")
UNSET_PATH = "<params.path: the .npz mfm-bench prepare wrote>"


class TensorsConfigError(MfmBenchError, ValueError):
    """The params do not fit the file (a modality it lacks, a label column past its width)."""


@dataclass
class TensorsConfig:
    path: str = option("", "the .npz file `mfm-bench prepare` wrote (required)")
    modalities: list[str] | None = option(None, "sequences to use as modalities; default every numeric sequence")
    task: str = option("regression", "regression, classification or multi_regression")
    range: list[float] | None = option(None, "regression: the label range, e.g. [-3, 3]")
    classes: list[str] | None = option(None, "classification: class names; labels are 0..len(classes)-1")
    label_index: int = option(0, "regression and classification: the label column to predict")
    targets: list[str] | None = option(None, "multi_regression: a name for every label column")
    metrics: str | None = option(None, "a registered metric set (e.g. cmu-sentiment); default the task's generic ones")
    seq_len: int | None = option(None, "time steps per sample; default as prepared")
    normalise: Literal["zscore", "original", "none"] = option(
        "zscore",
        "feature scaling fitted on the train split: zscore (each feature by the mean and std of the real steps) or "
        "none; original (the MFM code's FACET scaling) has no meaning for your own sequences and is refused",
    )
    normalize: bool | None = option(None, "deprecated: use normalise (true is zscore, false is none)")

    def __post_init__(self) -> None:
        if self.normalize is not None:  # the old key, kept for one release
            new = "zscore" if self.normalize else "none"
            warnings.warn(
                f"{NAME}: params.normalize is deprecated and will be removed; write normalise: {new}",
                DeprecatedParamWarning,
                stacklevel=2,
            )
            self.normalise, self.normalize = new, None
        if self.normalise == "original":
            raise ValueError(
                "normalise: original is the original MFM code's FACET scaling, which has no meaning for the "
                "sequences of a tensors file; use zscore (default) or none"
            )
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.task == "classification" and (not self.classes or len(self.classes) < 2):
            raise ValueError("task classification needs classes: [name, name, ...] (at least two)")
        if self.task == "multi_regression" and not self.targets:
            raise ValueError("task multi_regression needs targets: a name for every label column")
        if self.range is not None and (len(self.range) != 2 or self.range[0] >= self.range[1]):
            raise ValueError(f"range must be [low, high] with low < high, got {self.range}")
        if self.label_index < 0 or (self.seq_len is not None and self.seq_len < 1):
            raise ValueError("label_index must be >= 0 and seq_len >= 1")


class Tensors:
    """factory(cfg) -> dataset with ``spec`` and ``split(name)``; ``describe`` and ``declare`` read no array."""

    #: what ``mfm-bench fetch tensors`` says instead of downloading: the file is the user's own, made locally
    FETCH_ADVICE = (
        "the tensors dataset reads your own .npz file. Write it from your .csd files with `mfm-bench prepare "
        "--words words --labels labels --folds folds.json --out my-data.npz words=words.csd acoustic=acoustic.csd "
        "labels=labels.csd` (docs/datasets.md, 'Your own data'), then give the suite's dataset "
        "`params: {path: my-data.npz, task: regression}` (or classification with classes, or multi_regression "
        "with targets)"
    )

    def __init__(self, cfg: TensorsConfig) -> None:
        self.cfg = cfg
        self.spec = self.describe(cfg)
        self._splits = self._prepare()
        self._tensors: dict = {}

    @staticmethod
    def _file(cfg: TensorsConfig) -> Path:
        if not cfg.path:
            raise TensorsConfigError(
                f"{NAME}: params.path is required: the .npz file `mfm-bench prepare --out` "
                "wrote (docs/datasets.md, 'Your own data')"
            )
        return Path(cfg.path).expanduser().absolute()

    @classmethod
    def declare(cls, cfg: TensorsConfig):
        from mfm_bench.contracts import DataDeclaration, DataFile, DataFormat

        note = "write it with `mfm-bench prepare --out` from your .csd files (docs/datasets.md)"
        if not cfg.path:  # `mfm-bench datasets` lists the plugin with its default (empty) params
            return DataDeclaration(
                NAME, (DataFormat(NAME, str(Path.cwd()), (DataFile(UNSET_PATH, "all"),), note=note),)
            )
        f = cls._file(cfg)
        return DataDeclaration(NAME, (DataFormat(NAME, str(f.parent), (DataFile(f.name, "all"),), note=note),))

    @classmethod
    def modality_names(cls, cfg: TensorsConfig) -> list[str] | None:
        """The modalities the dataset will have, from ``meta.json`` alone (what ``validate`` checks the suite's
        conditions against); ``None`` when the file is not there yet."""
        if not cfg.path or not cls._file(cfg).is_file():
            return None
        return [m.name for m in cls.describe(cfg).modalities]

    @classmethod
    def describe(cls, cfg: TensorsConfig):
        from mfm_bench.contracts import DatasetSpec, Modality, Task
        from mfm_bench.data.prepare import read_tensors_meta

        path = cls._file(cfg)
        if not path.is_file():
            from .base import DataMissingError

            raise DataMissingError(
                f"{NAME}: no file {path}; write it with `mfm-bench prepare --out {path}` "
                "(docs/datasets.md, 'Your own data')"
            )
        meta = read_tensors_meta(path)
        _check_splits(meta, path)
        names = _modalities(cfg, meta, path)
        k = meta["label_dim"]
        if cfg.task == "multi_regression" and len(cfg.targets or ()) != k:
            raise TensorsConfigError(f"{path}: {k} label columns, but targets names {len(cfg.targets or ())}")
        if cfg.task != "multi_regression" and cfg.label_index >= k:
            raise TensorsConfigError(f"{path}: label_index {cfg.label_index}, but the labels have {k} column(s)")
        task = Task(
            cfg.task,
            range=tuple(cfg.range) if cfg.range else None,
            n_classes=len(cfg.classes) if cfg.classes else None,
            class_names=tuple(cfg.classes or ()),
            targets=tuple(cfg.targets or ()),
            metrics=cfg.metrics,
        )
        modalities = tuple(Modality(m, meta["sequences"][m]["dim"]) for m in names)
        seq_len = cfg.seq_len or meta.get("alignment", {}).get("seq_len")
        return DatasetSpec(
            NAME, modalities, task, tuple(meta["splits"]), seq_len=seq_len, citation="", licence="your own data"
        )

    def _prepare(self) -> dict:
        import numpy as np

        from mfm_bench.data.prepare import SplitArrays, fit_seq_len, read_tensors_meta, read_tensors_split, standardise

        path, cfg = self._file(self.cfg), self.cfg
        labels = read_tensors_meta(path)["labels"]
        names = [m.name for m in self.spec.modalities]
        out = {}
        for split in self.spec.splits:
            raw = read_tensors_split(path, split, names, labels)
            inputs, mask = {}, {}
            for m in names:
                x = raw[m].reshape(*raw[m].shape[:2], -1)
                x = np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
                inputs[m], mask[m] = x, raw[f"{m}.mask"].astype(bool)
                if cfg.seq_len is not None:
                    inputs[m], mask[m] = fit_seq_len(inputs[m], mask[m], cfg.seq_len, pad="left")
            out[split] = SplitArrays(inputs, mask, self._target(raw[labels], path, split), [str(i) for i in raw["ids"]])
        if cfg.normalise == "zscore" and "train" in out:
            standardise(out, "train")
        return out

    def _target(self, y, path: Path, split: str):
        import numpy as np

        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if self.cfg.task == "multi_regression":
            return y.astype(np.float32)
        col = y[:, self.cfg.label_index]
        if self.cfg.task == "regression":
            return col.astype(np.float32)
        n = len(self.cfg.classes or ())
        if len(col) and (np.any(col != np.round(col)) or col.min() < 0 or col.max() >= n):
            raise TensorsConfigError(
                f"{path} ({split}): classification labels must be integers 0..{n - 1} "
                f"(one per class name); found values in [{col.min()}, {col.max()}]"
            )
        return col.astype(np.int64)

    def split(self, name: str):
        if name not in self._splits:
            raise KeyError(f"{NAME} has splits {list(self._splits)}, not {name!r}")
        if name not in self._tensors:
            self._tensors[name] = self._splits[name].to_tensor_split()
        return self._tensors[name]


#: the splits a run trains, selects and tests on
NEEDED_SPLITS = ("train", "valid", "test")


def _check_splits(meta: dict, path: Path) -> None:
    """A run needs non-empty ``train``, ``valid`` and ``test`` splits: the folds of ``mfm-bench prepare``."""
    splits, sizes = list(meta.get("splits", [])), meta.get("sizes", {})
    missing = [s for s in NEEDED_SPLITS if s not in splits]
    if missing:
        raise TensorsConfigError(
            f"{path}: splits {splits}, but a run needs {list(NEEDED_SPLITS)} (missing {missing}); name the folds of "
            "folds.json train, valid and test and run `mfm-bench prepare` again"
        )
    empty = [s for s in NEEDED_SPLITS if sizes.get(s, 1) == 0]
    if empty:
        raise TensorsConfigError(
            f"{path}: split(s) {empty} hold no segment (sizes {sizes}); give those folds of folds.json video ids "
            "that the label file has and run `mfm-bench prepare` again"
        )


def _modalities(cfg: TensorsConfig, meta: dict, path: Path) -> list[str]:
    seqs = meta["sequences"]
    numeric = [n for n, s in seqs.items() if s.get("numeric", True)]
    if cfg.modalities is None:
        if not numeric:
            raise TensorsConfigError(f"{path}: no numeric sequence to use as a modality (sequences: {list(seqs)})")
        return numeric
    bad = [m for m in cfg.modalities if m not in numeric]
    if bad:
        raise TensorsConfigError(f"{path}: modalities {bad} are not numeric sequences of the file; it has {numeric}")
    return list(cfg.modalities)
