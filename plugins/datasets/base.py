"""What every real-data plugin shares: its config fields, finding the files, the cache, the split contract.

A plugin subclasses :class:`RealDataset` and declares, per format it can read (``mfn-h5``, ``csd``, ``pkl``),
where the files live (:attr:`RealDataset.SUBDIRS`, relative to the data home), which files a set of modalities
needs (:meth:`files_for`) and how to read them (:meth:`read`). The base class then

1. finds the data: ``params.path`` (the format's folder or a data home containing it), else
   ``$MFM_BENCH_DATA/<subdir>``, else the platform cache; ``format: auto`` takes the first format whose files
   for the requested modalities are all present;
2. fails with the missing file names when a requested modality's files are absent;
3. prepares the splits once (read, fit ``seq_len``, standardise with train statistics) and caches them
   (:mod:`mfm_bench.data.cache`), so a second run reads only the Arrow files;
4. hands out :class:`~mfm_bench.contracts.TensorSplit` from :meth:`split`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from mfm_bench.config import config_to_dict, option
from mfm_bench.errors import MfmBenchError

SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "visual")
FORMAT_NAMES = ("mfn-h5", "csd", "pkl")


class DataMissingError(MfmBenchError, FileNotFoundError):
    """The data a dataset needs are not on disk; the message names the files and how to get them."""


@dataclass
class RealConfig:
    path: str | None = option(None, "folder with the data: the format's folder (e.g. .../mfn-h5/mmmo) or a data home "
                                    "containing it; default $MFM_BENCH_DATA, else the platform cache")
    format: str = option("auto", "auto (first format whose files are present), mfn-h5, csd or pkl")
    modalities: list[str] | None = option(None, "subset of the dataset's modalities (text, audio, visual); default all")
    seq_len: int | None = option(None, "time steps per sample; default as stored (20 in MFN h5 and word-aligned CSD, "
                                       "50 in aligned pickles)")
    normalize: bool = option(True, "z-score each feature with the mean and std of the train split's real steps")
    cache: bool = option(True, "keep the prepared splits in the Arrow cache (mfm-bench cache ls)")
    fetch: bool = option(False, "download missing files (as `mfm-bench fetch`) before reading")

    def __post_init__(self) -> None:
        if self.format not in ("auto", *FORMAT_NAMES):
            raise ValueError(f"format must be auto, {', '.join(FORMAT_NAMES)}; got {self.format!r}")
        if self.modalities is not None:
            bad = [m for m in self.modalities if m not in MODALITIES]
            if bad or not self.modalities:
                raise ValueError(f"modalities must be a non-empty subset of {list(MODALITIES)}, got {self.modalities}")
            if len(set(self.modalities)) != len(self.modalities):
                raise ValueError(f"modalities lists a name twice: {self.modalities}")
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be at least 1, got {self.seq_len}")


class RealDataset:
    """Base of the real-data plugins (see the module docstring)."""

    NAME: ClassVar[str] = ""
    #: format -> folder relative to the data home, in the order ``format: auto`` tries them.
    SUBDIRS: ClassVar[dict[str, str]] = {}
    CITATION: ClassVar[str] = ""
    LICENCE: ClassVar[str] = ""
    #: bump when the preparation of this dataset changes, so old cache entries are not reused.
    CODE_VERSION: ClassVar[str] = "1"
    #: modalities the dataset has, in order.
    ALL_MODALITIES: ClassVar[tuple[str, ...]] = MODALITIES

    def __init__(self, cfg: RealConfig) -> None:
        self.cfg = cfg
        self.modalities = list(cfg.modalities or self.ALL_MODALITIES)
        bad = [m for m in self.modalities if m not in self.ALL_MODALITIES]
        if bad:
            raise ValueError(f"{self.NAME} has modalities {list(self.ALL_MODALITIES)}, not {bad}")
        if cfg.format != "auto" and cfg.format not in self.SUBDIRS:
            raise ValueError(f"{self.NAME} reads formats {list(self.SUBDIRS)}, not {cfg.format!r}")
        self.format, self.folder, sources = self.locate()
        from mfm_bench.data import cache

        params = {k: v for k, v in config_to_dict(cfg).items() if k not in ("path", "cache", "fetch", "format")}
        params["format"] = self.format
        self._splits, self.cache_info = cache.load_or_build(
            self.NAME, sources, params, f"{self.NAME}:{self.CODE_VERSION}", self._prepare, use_cache=cfg.cache
        )
        first = self._splits["train"]
        from mfm_bench.contracts import DatasetSpec, Modality

        self.spec = DatasetSpec(
            name=self.NAME,
            modalities=tuple(Modality(m, int(first.inputs[m].shape[-1])) for m in self.modalities),
            task=self.task(),
            splits=tuple(self._splits),
            seq_len=int(first.inputs[self.modalities[0]].shape[1]),
            citation=self.CITATION,
            licence=self.LICENCE,
        )
        self._tensors: dict[str, Any] = {}

    # -- to implement -----------------------------------------------------------------------------------
    def files_for(self, fmt: str, modalities: list[str], folder: Path | None = None) -> list[str]:
        """File names (relative to the format's folder) that ``modalities`` need in format ``fmt``; ``folder`` is
        where they are looked for (to choose between alternative names)."""
        raise NotImplementedError

    def read(self, fmt: str, folder: Path, modalities: list[str]) -> dict:
        """{split: SplitArrays} read from ``folder`` in format ``fmt``, targets already in the task's convention."""
        raise NotImplementedError

    def task(self):
        """The :class:`~mfm_bench.contracts.Task` under the current config."""
        raise NotImplementedError

    # -- shared machinery -------------------------------------------------------------------------------
    def split(self, name: str):
        """The split ``name`` as a :class:`~mfm_bench.contracts.TensorSplit`."""
        if name not in self._splits:
            raise KeyError(f"{self.NAME} has splits {list(self._splits)}, not {name!r}")
        if name not in self._tensors:
            self._tensors[name] = self._splits[name].to_tensor_split()
        return self._tensors[name]

    def _prepare(self) -> dict:
        from mfm_bench.data.prepare import fit_seq_len, standardise

        splits = self.read(self.format, self.folder, self.modalities)
        if self.cfg.seq_len is not None:
            for s in splits.values():
                for m in self.modalities:
                    s.inputs[m], s.mask[m] = fit_seq_len(s.inputs[m], s.mask[m], self.cfg.seq_len)
        if self.cfg.normalize:
            standardise(splits, "train")
        return splits

    @classmethod
    def candidates(cls, fmt: str, path: str | None) -> list[Path]:
        """Folders where format ``fmt`` is looked for, in order."""
        if path:
            p = Path(path).expanduser()
            return [p, p / cls.SUBDIRS[fmt]]
        from mfm_bench.data.paths import data_home

        return [data_home() / cls.SUBDIRS[fmt]]

    @classmethod
    def ensure_data(cls, cfg: RealConfig) -> Path:
        """Download what ``cfg`` needs when it is not on disk (no preparation); returns the data folder."""
        obj = cls.__new__(cls)
        obj.cfg = dataclasses.replace(cfg, fetch=True)
        obj.modalities = list(cfg.modalities or cls.ALL_MODALITIES)
        return obj.locate()[1]

    def locate(self) -> tuple[str, Path, list[Path]]:
        """(format, folder, source files) of the data to read; fetches first when ``fetch: true``."""
        try:
            return self._locate()
        except DataMissingError:
            if not self.cfg.fetch:
                raise
        from mfm_bench.data.fetch import fetch_dataset

        fmt = self.cfg.format if self.cfg.format != "auto" else next(iter(self.SUBDIRS))
        to = Path(self.cfg.path).expanduser() if self.cfg.path else None
        fetch_dataset(self.NAME, to=to, fmt=fmt, modalities=self.modalities)
        return self._locate()

    def _locate(self) -> tuple[str, Path, list[Path]]:
        formats = list(self.SUBDIRS) if self.cfg.format == "auto" else [self.cfg.format]
        partial, looked = [], []
        for fmt in formats:
            for folder in self.candidates(fmt, self.cfg.path):
                needed = self.files_for(fmt, self.modalities, folder)
                looked.append(f"{fmt}: {folder}")
                missing = [f for f in needed if not (folder / f).is_file()]
                if not missing:
                    return fmt, folder, [folder / f for f in needed]
                if len(missing) < len(needed):
                    partial.append((fmt, folder, missing))
        if partial:
            fmt, folder, missing = partial[0]
            raise DataMissingError(
                f"{self.NAME}: modalities {self.modalities} need files that are not in {folder} ({fmt} format): "
                f"{', '.join(missing)}. Get them with `mfm-bench fetch {self.NAME}`, or request only the modalities "
                f"whose files you have (params: {{modalities: [...]}})"
            )
        raise DataMissingError(
            f"{self.NAME}: no data found. Looked in: {'; '.join(looked)}. Run `mfm-bench fetch {self.NAME}`, set "
            f"MFM_BENCH_DATA to a folder holding {', '.join(sorted(set(self.SUBDIRS.values())))}, or give params.path"
        )

    @classmethod
    def default_config(cls) -> RealConfig:
        cfg_cls = cls.CONFIG  # type: ignore[attr-defined]
        return cfg_cls()

    @classmethod
    def presence(cls, path: str | None = None) -> list[dict[str, Any]]:
        """For ``mfm-bench datasets``: per format, the folder looked at and which default files are missing."""
        mods = list(cls.ALL_MODALITIES)
        rows = []
        obj = cls.__new__(cls)
        obj.cfg = cls.default_config()
        for fmt in cls.SUBDIRS:
            best = None
            for folder in cls.candidates(fmt, path):
                needed = obj.files_for(fmt, mods, folder)
                missing = [f for f in needed if not (folder / f).is_file()]
                if best is None or len(missing) < len(best[1]):
                    best = (folder, missing)
            folder, missing = best  # type: ignore[misc]
            rows.append({"format": fmt, "folder": str(folder), "missing": missing})
        return rows


# -- the MFN per-dataset folder layout, shared by ICT-MMMO, YouTube, POM and MOUD ---------------------------
def mfn_folder_files(modalities: list[str]) -> list[str]:
    """Files of the MFN folder layout (``audio_train.h5`` ...) that ``modalities`` need, labels included."""
    from mfm_bench.data.mfn_h5 import folder_files

    out = []
    for split in SPLITS:
        out += [p.name for p in folder_files(Path("."), split, modalities).values()]
    return out


def mfn_folder_read(folder: Path, modalities: list[str], dims: dict[str, int], to_target) -> dict:
    """{split: SplitArrays} of an MFN folder; ``to_target(labels, path)`` converts the stored labels."""
    from mfm_bench.data.mfn_h5 import LABEL_FILE, read_folder_split, step_mask
    from mfm_bench.data.prepare import SplitArrays

    out = {}
    for split in SPLITS:
        inputs, labels = read_folder_split(folder, split, modalities, dims)
        target = to_target(labels, folder / LABEL_FILE.format(split=split))
        out[split] = SplitArrays(inputs, {m: step_mask(x) for m, x in inputs.items()}, target,
                                 [f"{split}-{i:05d}" for i in range(len(target))])
    return out


# -- processed pickles and CSD ------------------------------------------------------------------------------
def first_present(folder: Path | None, names: list[str]) -> str:
    """The first of ``names`` that exists in ``folder`` (else the first name, reported as missing)."""
    for n in names:
        if folder is not None and (folder / n).is_file():
            return n
    return names[0]


def from_raw(raw: dict, to_target) -> dict:
    """{split: SplitArrays} from the readers' {split: {"inputs", "mask", "labels", "ids"}};
    ``to_target(labels, split)`` applies the task's label convention."""
    from mfm_bench.data.prepare import SplitArrays

    return {s: SplitArrays(r["inputs"], r["mask"], to_target(r["labels"], s), r["ids"]) for s, r in raw.items()}
