"""``paired-digits``: real 8x8 handwritten digits paired by label with procedural 1-D digit signals, offline.

The offline analogue of the MFM paper's SVHN + MNIST pairs (see docs/digits.md):

- ``image`` [1, 8, 8]: scikit-learn's 1,797 8x8 digits (UCI optical digits, shipped inside scikit-learn),
  scaled to [0, 1];
- ``signal`` [40] (a vector modality): MNIST-1D signals (Greydanus 2020), generated locally by the ``mnist1d``
  package's procedural generator (templates + random scale, shear, translation and noise); nothing is downloaded.

Pairing rule: within each digit class, the images (in a seeded random order) are paired one-to-one with freshly
generated signals of the same class; the label is the shared digit, everything else (handwriting style, signal
transformation) is private to each modality. Splits are stratified by class and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfm_bench.config import option
from mfm_bench.contracts import DatasetSpec, Modality, Task, TensorSplit
from mfm_bench.errors import MfmBenchError

SPLITS = ("train", "valid", "test")
CITATION = (
    "Images: Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML Repository (1998), via "
    "sklearn.datasets.load_digits. Signals: Greydanus, Scaling down deep learning with MNIST-1D (2020/ICML 2024)."
)
LICENCE = "images CC BY 4.0 (UCI); MNIST-1D generator Apache-2.0; signals generated locally"


class MissingExtraError(MfmBenchError, ImportError):
    """An optional dependency of a dataset is not installed; the message names the extra to install."""


@dataclass
class PairedDigitsConfig:
    seed: int = option(0, "seed of the pairing, the signals and the splits")
    valid_frac: float = option(0.15, "fraction of each class held out for validation")
    test_frac: float = option(0.15, "fraction of each class held out for testing")
    signal_len: int = option(40, "length of each MNIST-1D signal (the package's final_seq_length)")
    signal_noise: float = option(0.25, "correlated-noise scale of the signal generator (MNIST-1D's corr_noise_scale)")
    missing_train: float = option(
        0.0,
        "fraction of training pairs with one modality removed (zeros, all-False mask), chosen at random; never both",
    )

    def __post_init__(self) -> None:
        if not (0 < self.valid_frac < 1 and 0 < self.test_frac < 1 and self.valid_frac + self.test_frac < 0.9):
            raise ValueError(
                f"valid_frac and test_frac must be in (0, 1) and sum below 0.9, got "
                f"{self.valid_frac} and {self.test_frac}"
            )
        if self.signal_len < 8:
            raise ValueError(f"signal_len must be at least 8, got {self.signal_len}")
        if not 0.0 <= self.missing_train < 1.0:
            raise ValueError(f"missing_train must be in [0, 1), got {self.missing_train}")


def _require_extras():
    try:
        import mnist1d.data  # noqa: F401
        import sklearn.datasets  # noqa: F401
    except ImportError as e:
        raise MissingExtraError(
            f'paired-digits needs scikit-learn and mnist1d ({e}); install them with pip install -e ".[digits]"'
        ) from e
    return sklearn.datasets, mnist1d.data


def load_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 scikit-learn digits as ([N, 1, 8, 8] float32 in [0, 1], [N] int labels)."""
    datasets, _ = _require_extras()
    d = datasets.load_digits()
    return (d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64)


def make_signals(per_class: int, cfg: PairedDigitsConfig) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` MNIST-1D signals per digit, generated offline: ([10 * per_class, signal_len], labels)."""
    _, data = _require_extras()
    args = data.get_dataset_args()
    args.num_samples = 10 * per_class
    args.final_seq_length = cfg.signal_len
    args.corr_noise_scale = cfg.signal_noise
    args.seed = cfg.seed
    args.train_split = 1.0
    state = np.random.get_state()  # the generator seeds numpy's global RNG; leave the caller's untouched
    try:
        out = data.make_dataset(args)
    finally:
        np.random.set_state(state)
    return out["x"].astype(np.float32), out["y"].astype(np.int64)


def pair_by_label(img_y: np.ndarray, sig_y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each image i, the index of its signal: same class, one-to-one, in a seeded random order."""
    partner = np.empty(len(img_y), dtype=np.int64)
    for c in np.unique(img_y):
        imgs, sigs = np.flatnonzero(img_y == c), rng.permutation(np.flatnonzero(sig_y == c))
        if len(sigs) < len(imgs):
            raise ValueError(f"class {c}: {len(imgs)} images but only {len(sigs)} signals to pair them with")
        partner[imgs] = sigs[: len(imgs)]
    return partner


def stratified_splits(y: np.ndarray, cfg: PairedDigitsConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per class, a seeded permutation cut into test, valid and train; each split's indices sorted."""
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test, n_valid = round(len(idx) * cfg.test_frac), round(len(idx) * cfg.valid_frac)
        parts["test"].append(idx[:n_test])
        parts["valid"].append(idx[n_test : n_test + n_valid])
        parts["train"].append(idx[n_test + n_valid :])
    return {s: np.sort(np.concatenate(v)) for s, v in parts.items()}


class PairedDigits:
    """The paired dataset; ``split(name)`` returns a :class:`TensorSplit` (image [1, 8, 8], signal [L])."""

    def __init__(self, cfg: PairedDigitsConfig) -> None:
        self.cfg = cfg
        self.spec = self.describe(cfg)
        self._splits = self._build()

    @classmethod
    def describe(cls, cfg: PairedDigitsConfig) -> DatasetSpec:
        """The spec of ``cls(cfg)`` without generating anything (what ``validate`` checks conditions on)."""
        return DatasetSpec(
            name="paired-digits",
            modalities=(
                Modality("image", 1, "image", (1, 8, 8)),
                Modality("signal", cfg.signal_len, "vector", (cfg.signal_len,)),
            ),
            task=Task("classification", n_classes=10, class_names=tuple(str(d) for d in range(10))),
            citation=CITATION,
            licence=LICENCE,
        )

    def split(self, name: str) -> TensorSplit:
        if name not in self._splits:
            raise KeyError(f"paired-digits has splits {list(self._splits)}, not {name!r}")
        return self._splits[name]

    def _build(self) -> dict[str, TensorSplit]:
        import torch  # here, so that the config and the registry never import it

        images, y = load_images()
        per_class = int(np.bincount(y).max())
        signals, sig_y = make_signals(per_class, self.cfg)
        rng = np.random.default_rng(self.cfg.seed)
        signals = signals[pair_by_label(y, sig_y, rng)]  # row i is image i's partner
        out = {}
        for split, idx in stratified_splits(y, self.cfg, rng).items():
            n = len(idx)
            inputs = {"image": torch.from_numpy(images[idx]), "signal": torch.from_numpy(signals[idx])}
            mask = {m: torch.ones(n, 1, dtype=torch.bool) for m in inputs}
            if split == "train" and self.cfg.missing_train > 0:
                self._drop(inputs, mask, rng)
            out[split] = TensorSplit(inputs, mask, torch.from_numpy(y[idx]), [f"digit-{i:04d}" for i in idx])
        return out

    def _drop(self, inputs: dict, mask: dict, rng: np.random.Generator) -> None:
        """Remove one modality (chosen at random) from a ``missing_train`` fraction of the pairs."""
        import torch

        n = len(mask["image"])
        hit = np.flatnonzero(rng.random(n) < self.cfg.missing_train)
        which = rng.integers(0, 2, size=len(hit))
        for k, m in enumerate(("image", "signal")):
            rows = torch.from_numpy(hit[which == k])
            inputs[m][rows] = 0.0
            mask[m][rows] = False
