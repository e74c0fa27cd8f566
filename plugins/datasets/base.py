"""What every real-data plugin shares: its config fields, finding the files, the cache, the split contract.

A plugin subclasses :class:`RealDataset` and declares, per format it can read (``mfn-h5``, ``csd``, ``pkl``),
where the files live (:attr:`RealDataset.SUBDIRS`, relative to the data home), which files a set of modalities
needs with their pinned sources (:meth:`files`), the feature dims (:meth:`modality_dims`) and how to read them
(:meth:`read`). The base class then

0. declares, without reading data, the files a config needs (:meth:`declare`, what ``mfm-bench fetch``,
   ``mfm-bench datasets`` and ``fetch: true`` read) and the spec it will have (:meth:`describe`);
1. finds the data: ``params.path`` (the format's folder or a data home containing it), else
   ``$MFM_BENCH_DATA/<subdir>``, else the platform cache; ``format: auto`` takes the first format whose files
   for the requested modalities are all present;
2. fails with the missing file names when a requested modality's files are absent;
3. prepares the splits once (read, fit ``seq_len``, standardise with train statistics) and caches them
   (:mod:`mfm_bench.data.cache`), so a second run reads only the Arrow files;
4. hands out :class:`~mfm_bench.contracts.TensorSplit` from :meth:`split`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from mfm_bench.config import config_to_dict, option
from mfm_bench.errors import MfmBenchError

SPLITS = ("train", "valid", "test")
MODALITIES = ("text", "audio", "visual")
FORMAT_NAMES = ("mfn-h5", "csd", "pkl")


class DataMissingError(MfmBenchError, FileNotFoundError):
    """The data a dataset needs are not on disk; the message names the files and how to get them."""


@dataclass
class RealConfig:
    path: str | None = option(
        None,
        "folder with the data: the format's folder (e.g. .../mfn-h5/mmmo) or a data home "
        "containing it; default $MFM_BENCH_DATA, else the platform cache",
    )
    format: str = option("auto", "auto (first format whose files are present), mfn-h5, csd or pkl")
    modalities: list[str] | None = option(None, "subset of the dataset's modalities (text, audio, visual); default all")
    seq_len: int | None = option(
        None, "time steps per sample; default as stored (20 in MFN h5 and word-aligned CSD, 50 in aligned pickles)"
    )
    normalise: Literal["zscore", "original", "none"] = option(
        "zscore",
        "feature scaling fitted on the train split: zscore (each feature by the mean and std of the real steps), "
        "original (the visual features divided by their max-abs, the others raw, as the original MFM's get_data "
        "scales FACET) or none",
    )
    cache: bool = option(True, "keep the prepared splits in the Arrow cache (mfm-bench cache ls)")
    fetch: bool = option(False, "download missing files (as `mfm-bench fetch`) before reading")

    def __post_init__(self) -> None:
        if self.format not in ("auto", *FORMAT_NAMES):
            raise ValueError(f"format must be auto, {', '.join(FORMAT_NAMES)}; got {self.format!r}")
        if self.modalities is not None:
            bad = [m for m in self.modalities if m not in MODALITIES]
            if bad or not self.modalities:
                names = [f"{ALIASES[m]!r} for {m!r}" for m in bad if m in ALIASES]
                hint = f" (the names are the same for every format: write {', '.join(names)})" if names else ""
                raise ValueError(
                    f"modalities must be a non-empty subset of {list(MODALITIES)}, got {self.modalities}{hint}"
                )
            if len(set(self.modalities)) != len(self.modalities):
                raise ValueError(f"modalities lists a name twice: {self.modalities}")
        if self.seq_len is not None and self.seq_len < 1:
            raise ValueError(f"seq_len must be at least 1, got {self.seq_len}")


#: names other tools and the files give a modality -> the project's name (docs/datasets.md: the h5 video_* files
#: and the pickles' vision arrays are visual)
ALIASES = {
    "vision": "visual",
    "video": "visual",
    "facet": "visual",
    "acoustic": "audio",
    "covarep": "audio",
    "language": "text",
    "words": "text",
    "glove": "text",
}


class RealDataset:
    """Base of the real-data plugins (see the module docstring)."""

    NAME: ClassVar[str] = ""
    #: format -> folder relative to the data home, in the order ``format: auto`` tries them.
    SUBDIRS: ClassVar[dict[str, str]] = {}
    #: format -> where to obtain files that have no public download (shown by ``fetch`` and ``datasets``).
    NOTES: ClassVar[dict[str, str]] = {}
    CITATION: ClassVar[str] = ""
    LICENCE: ClassVar[str] = ""
    #: bump when the preparation of this dataset changes, so old cache entries are not reused.
    CODE_VERSION: ClassVar[str] = "1"
    #: modalities the dataset has, in order.
    ALL_MODALITIES: ClassVar[tuple[str, ...]] = MODALITIES

    def __init__(self, cfg: RealConfig) -> None:
        self._configure(cfg)
        self.format, self.folder, sources = self.locate()
        from mfm_bench.data import cache

        params = {k: v for k, v in config_to_dict(cfg).items() if k not in ("path", "cache", "fetch", "format")}
        params["format"] = self.format
        self._splits, self.cache_info = cache.load_or_build(
            self.NAME, sources, params, self.cache_code_version(), self._prepare, use_cache=cfg.cache
        )
        first = self._splits["train"]
        dims = {m: int(first.inputs[m].shape[-1]) for m in self.modalities}
        self.spec = self._spec(dims, tuple(self._splits), int(first.inputs[self.modalities[0]].shape[1]))
        self._tensors: dict[str, Any] = {}

    @classmethod
    def cache_code_version(cls) -> str:
        """The code version its cache entries are keyed by (``mfm-bench cache ls`` marks entries of another one
        stale)."""
        return f"{cls.NAME}:{cls.CODE_VERSION}"

    def _configure(self, cfg: RealConfig) -> None:
        self.cfg = cfg
        self.modalities = list(cfg.modalities or self.ALL_MODALITIES)
        bad = [m for m in self.modalities if m not in self.ALL_MODALITIES]
        if bad:
            raise ValueError(f"{self.NAME} has modalities {list(self.ALL_MODALITIES)}, not {bad}")
        if cfg.format != "auto" and cfg.format not in self.SUBDIRS:
            raise ValueError(f"{self.NAME} reads formats {list(self.SUBDIRS)}, not {cfg.format!r}")

    @classmethod
    def _bare(cls, cfg: RealConfig) -> RealDataset:
        """An instance that knows its config but has read nothing (for the declarations)."""
        obj = cls.__new__(cls)
        obj._configure(cfg)
        return obj

    def _spec(self, dims: dict[str, int], splits: tuple[str, ...], seq_len: int | None):
        from mfm_bench.contracts import DatasetSpec, Modality

        return DatasetSpec(
            name=self.NAME,
            modalities=tuple(Modality(m, dims[m]) for m in self.modalities),
            task=self.task(),
            splits=splits,
            seq_len=seq_len,
            citation=self.CITATION,
            licence=self.LICENCE,
        )

    # -- to implement -----------------------------------------------------------------------------------
    def files(self, fmt: str, modalities: list[str], folder: Path | None = None) -> list:
        """The :class:`~mfm_bench.contracts.DataFile` s (names relative to the format's folder, with their pinned
        sources when public) that ``modalities`` need in format ``fmt``; ``folder`` is where they are looked for
        (to choose between alternative names)."""
        raise NotImplementedError

    def read(self, fmt: str, folder: Path, modalities: list[str]) -> dict:
        """{split: SplitArrays} read from ``folder`` in format ``fmt``, targets already in the task's convention."""
        raise NotImplementedError

    def task(self):
        """The :class:`~mfm_bench.contracts.Task` under the current config."""
        raise NotImplementedError

    def modality_dims(self, fmt: str, folder: Path) -> dict[str, int] | None:
        """{modality: feature dim} in format ``fmt`` without reading the data, or ``None`` when only reading tells
        (then :meth:`describe` builds the dataset)."""
        return None

    def stored_seq_len(self, fmt: str) -> int | None:
        """Steps per sample as stored in format ``fmt`` (``None``: unknown without reading)."""
        return 20 if fmt in ("mfn-h5", "csd") else None

    @classmethod
    def folds(cls) -> dict[str, tuple[str, ...]] | None:
        """The standard folds (split -> video ids), for datasets that define them beside their files."""
        return None

    # -- declarations (no data read) --------------------------------------------------------------------
    @classmethod
    def declare(cls, cfg: RealConfig):
        """The :class:`~mfm_bench.contracts.DataDeclaration` of ``cfg``: per format it may read (all of them
        under ``format: auto``), the folder and the files its modalities and features need."""
        from mfm_bench.contracts import DataDeclaration, DataFormat

        obj = cls._bare(cfg)
        formats = []
        for fmt in list(cls.SUBDIRS) if cfg.format == "auto" else [cfg.format]:
            best = None
            for folder in cls.candidates(fmt, cfg.path):
                files = obj.files(fmt, obj.modalities, folder)
                n_missing = sum(not (folder / f.name).is_file() for f in files)
                if best is None or n_missing <= best[0]:  # a tie goes to the later folder, where fetch writes
                    best = (n_missing, folder, files)
            _, folder, files = best  # type: ignore[misc]
            formats.append(
                DataFormat(
                    fmt,
                    cls.SUBDIRS[fmt] if cfg.path is None else str(folder),
                    tuple(files),
                    mirror_dir=cls.SUBDIRS[fmt].partition("/")[2],
                    note=cls.NOTES.get(fmt, ""),
                )
            )
        return DataDeclaration(cls.NAME, tuple(formats), cls.folds())

    @classmethod
    def modality_names(cls, cfg: RealConfig) -> list[str]:
        """The modalities ``cls(cfg)`` will have, from the config alone (what ``validate`` checks conditions on)."""
        return list(cls._bare(cfg).modalities)

    @classmethod
    def describe(cls, cfg: RealConfig):
        """The :class:`~mfm_bench.contracts.DatasetSpec` ``cls(cfg)`` will have, from the declaration and the
        plugin's known dims (the format present on disk, else the first one); builds the dataset only when the
        dims cannot be known otherwise (processed pickles)."""
        from mfm_bench.data.fetch import complete_format, folder_of

        decl = cls.declare(cfg)
        fmt = complete_format(decl) or decl.formats[0]
        obj = cls._bare(cfg)
        obj.format, obj.folder = fmt.name, folder_of(fmt)
        dims = obj.modality_dims(fmt.name, obj.folder)
        stored = obj.stored_seq_len(fmt.name)
        if dims is None or (cfg.seq_len is None and stored is None):
            return cls(cfg).spec
        return obj._spec(dims, SPLITS, cfg.seq_len or stored)

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
        if self.cfg.normalise == "zscore":
            standardise(splits, "train")
        elif self.cfg.normalise == "original":
            scale_max_abs(splits, "train", [m for m in self.modalities if m == "visual"])
        return splits

    @classmethod
    def candidates(cls, fmt: str, path: str | None) -> list[Path]:
        """Folders where format ``fmt`` is looked for, in order."""
        if path:
            p = Path(path).expanduser().absolute()  # a relative path is the working folder's, not the data home's
            return [p, p / cls.SUBDIRS[fmt]]
        from mfm_bench.data.paths import data_home

        return [data_home() / cls.SUBDIRS[fmt]]

    def locate(self) -> tuple[str, Path, list[Path]]:
        """(format, folder, source files) of the data to read; fetches first when ``fetch: true``."""
        try:
            return self._locate()
        except DataMissingError:
            if not self.cfg.fetch:
                raise
        from mfm_bench.data.fetch import fetch_dataset

        fetch_dataset(self.declare(self.cfg))  # the files of this config: its format, modalities and features
        return self._locate()

    def _locate(self) -> tuple[str, Path, list[Path]]:
        from mfm_bench.data.fetch import folder_of, missing_files

        decl = self.declare(self.cfg)
        partial = []
        for fmt in decl.formats:
            folder, missing = folder_of(fmt), missing_files(fmt)
            if not missing:
                return fmt.name, folder, [folder / f.name for f in fmt.files]
            if len(missing) < len(fmt.files):
                roles = {f.name: f.role for f in fmt.files if f.name in missing}
                partial.append((fmt.name, folder, missing, roles))
        if partial:
            fmt, folder, missing, by_file = partial[0]
            roles = set(by_file.values())
            if roles <= set(self.ALL_MODALITIES):  # only some modalities' own files are absent
                instead = (
                    f", or request only the modalities whose files you have (params: {{modalities: "
                    f"{[m for m in self.modalities if m not in roles]}}})"
                    if len(roles) < len(self.modalities)
                    else ""
                )
            else:  # files every modality needs (the labels, CMU-MOSI's X_*.h5 holding all three)
                shared = [n for n, r in by_file.items() if r not in self.ALL_MODALITIES]
                instead = f"; every modality needs {', '.join(shared)}"
            raise DataMissingError(
                f"{self.NAME}: modalities {self.modalities} need files that are not in {folder} ({fmt} format): "
                f"{', '.join(missing)}. Get them with `mfm-bench fetch {self.NAME}`{instead}"
            )
        looked = [f"{f.name}: {c}" for f in decl.formats for c in self.candidates(f.name, self.cfg.path)]
        raise DataMissingError(
            f"{self.NAME}: no data found. Looked in: {'; '.join(looked)}. Run `mfm-bench fetch {self.NAME}`, set "
            f"MFM_BENCH_DATA to a folder holding {', '.join(sorted(set(self.SUBDIRS.values())))}, or give params.path"
            + self._path_hint()
        )

    def _path_hint(self) -> str:
        """When ``params.path`` is a folder between the data home and a format's folder (``.../mfn-h5``), the
        folder it should name."""
        if not self.cfg.path:
            return ""
        path = Path(self.cfg.path).expanduser()
        for sub in self.SUBDIRS.values():
            parts = Path(sub).parts
            for k in range(1, len(parts)):
                if path.name == parts[k - 1] and (path / Path(*parts[k:])).is_dir():
                    home = path.parents[k - 1]
                    return (
                        f" ({path} holds the {self.NAME} folder but is not it: give params.path: "
                        f"{path / Path(*parts[k:])}, or the data home {home})"
                    )
        return ""


# -- the MFN per-dataset folder layout, shared by ICT-MMMO, YouTube, POM and MOUD ---------------------------
def mfn_folder_files(dataset: str, modalities: list[str]) -> list:
    """The :class:`~mfm_bench.contracts.DataFile` s of the MFN folder layout (``audio_train.h5`` ...) that
    ``modalities`` need, labels included, with their pinned sources in the MFN repository when it has them."""
    from mfm_bench.contracts import DataFile

    from .manifests import mfn_sources
    from .mfn_h5 import folder_files

    pinned = mfn_sources(dataset)
    out = []
    for split in SPLITS:
        for role, p in folder_files(Path("."), split, modalities).items():
            url, blob, size = pinned.get(p.name, (None, None, None))
            out.append(DataFile(p.name, role, url, git_blob=blob, size=size))
    return out


def h5_dims(folder: Path, files: dict[str, str]) -> dict[str, int] | None:
    """{role: last dim of the array in ``folder/name``} from the h5 headers (no data read); ``None`` when a file
    is absent."""
    import h5py

    out = {}
    for role, name in files.items():
        if not (folder / name).is_file():
            return None
        with h5py.File(folder / name, "r") as f:
            key = next((k for k in ("d1", "data") if k in f), None)
            if key is None:  # reading reports the layout error
                return None
            out[role] = int(f[key].shape[-1])
    return out


def mfn_folder_read(folder: Path, modalities: list[str], dims: dict[str, int], to_target) -> dict:
    """{split: SplitArrays} of an MFN folder; ``to_target(labels, path)`` converts the stored labels."""
    from mfm_bench.data.prepare import SplitArrays

    from .mfn_h5 import LABEL_FILE, read_folder_split, step_mask

    out = {}
    for split in SPLITS:
        inputs, labels = read_folder_split(folder, split, modalities, dims)
        target = to_target(labels, folder / LABEL_FILE.format(split=split))
        out[split] = SplitArrays(
            inputs,
            {m: step_mask(x) for m, x in inputs.items()},
            target,
            [f"{split}-{i:05d}" for i in range(len(target))],
        )
    return out


# -- processed pickles and CSD ------------------------------------------------------------------------------
def local_files(names: list[str], role: str = "all") -> list:
    """:class:`~mfm_bench.contracts.DataFile` s without a public source (files the user obtains)."""
    from mfm_bench.contracts import DataFile

    return [DataFile(n, role) for n in names]


def csd_declared(dataset: str, features: dict[str, str], modalities: list[str]) -> list:
    """The CSD :class:`~mfm_bench.contracts.DataFile` s ``modalities`` need under ``features`` (the word
    vectors always: they time the words)."""
    from mfm_bench.contracts import DataFile

    from .manifests import csd_files

    table = csd_files(dataset, {m: features[m] for m in modalities})
    return [DataFile(name, role, url) for role, (name, url) in table.items()]


def csd_read(obj: RealDataset, folder: Path, modalities: list[str], to_target) -> dict:
    """{split: SplitArrays} of the CMU CSD files of ``obj`` over its standard folds, word-aligned by
    :mod:`mfm_bench.align`; ``to_target(labels, where)`` converts the labels."""
    from mfm_bench.data.csd import read_csd_splits

    files = {f.role: f.name for f in obj.files("csd", modalities, folder)}
    raw = read_csd_splits(folder, files, modalities, obj.cfg.seq_len or 20, obj.folds())
    return from_raw(raw, lambda y, s: to_target(y, f"{folder / files['labels']} ({s})"))


def csd_dims(obj: RealDataset, folder: Path) -> dict[str, int] | None:
    """{modality: dim} of the chosen standard CSD features (``None`` when a feature's dim is not tabled)."""
    from .manifests import CSD_DIMS

    feats = {m: obj.cfg.features[m] for m in obj.modalities}  # type: ignore[attr-defined]
    return {m: CSD_DIMS[f] for m, f in feats.items()} if all(f in CSD_DIMS for f in feats.values()) else None


def complete_features(dataset: str, given: dict, default: dict) -> dict:
    """The CSD ``features`` param: ``given`` (modality -> standard feature, for some modalities or all) completed
    from ``default``; a key that is not a modality or an unknown feature is an error naming it and the choices."""
    from .manifests import CSD_FILES, LABELS, WORDS

    bad = [k for k in given if k not in MODALITIES]
    if bad:
        raise ValueError(f"features: keys are modalities {list(MODALITIES)}, not {bad[0]!r}")
    known = sorted(k for k in CSD_FILES[dataset] if k not in (WORDS, LABELS))
    for m, f in given.items():
        if f not in known:
            raise ValueError(f"features.{m}: {dataset} has no standard CSD feature {f!r}; choose from {known}")
    out = dict(given)
    for m, f in default.items():
        out.setdefault(m, f)
    return out


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


def scale_max_abs(splits: dict, train: str, modalities: list[str]) -> None:
    """Divide each feature of ``modalities`` in place by its max-abs over the ``train`` split (1 where that is 0),
    the original MFM's scaling of FACET (pliang279/factorized ``mfm_mosi.py`` ``get_data``)."""
    import numpy as np

    for m in modalities:
        top = np.abs(splits[train].inputs[m]).reshape(-1, splits[train].inputs[m].shape[-1]).max(0)  # (D,)
        top = np.where(top == 0, 1.0, top).astype(np.float32)
        for s in splits.values():
            s.inputs[m] = (s.inputs[m] / top).astype(np.float32)
