"""``synthetic-factors``: an embedded multimodal sequence dataset with known factor structure.

Generative story, per sample (all maps fixed by ``seed``):

- a shared factor s ~ N(0, I_k) drives the label and every modality;
- a private factor p_m ~ N(0, I_k) per modality drives only modality m;
- each modality's step t is x_m[t] = tanh([s, p_m, time basis(t)] W1_m) W2_m + noise, standardised;
- the label is y = 3 tanh(a.s + 0.5 s_0 s_1 + w3 p_1,0 p_2,0 p_3,0) in [-3, 3] (regression) or its train-quantile bin
  (classification); the three-way term (weight w3 = ``three_way``, default 0) multiplies the first private
  component of the first three modalities, information no single modality or pair of them holds;
- sequences have random lengths and are left-padded with zeros (mask False), as in the MFN h5 files.

The defaults are shaped like word-aligned CMU-MOSI. The true factors come with every sample
(``factors["shared"]``, ``factors["private_<m>"]``) so disentanglement can be scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mfm_bench.config import ConfigError, option
from mfm_bench.contracts import DatasetSpec, Modality, Task, TensorSplit

SPLITS = ("train", "valid", "test")


@dataclass
class SyntheticConfig:
    seed: int = option(0, "seed of the generator: same seed, same data, bit for bit")
    seq_len: int = option(20, "time steps per sample (padded)")
    dims: dict = option({"text": 300, "audio": 5, "visual": 20}, "modality name -> feature dim (1 to 6 modalities)")
    task: Literal["regression", "classification"] = option("regression", "regression in [-3, 3] or classification")
    n_classes: int = option(2, "classes when task is classification (quantile bins of the regression label)")
    n_train: int = option(1284, "training samples")
    n_valid: int = option(229, "validation samples")
    n_test: int = option(686, "test samples")
    noise: float = option(0.5, "std of the Gaussian noise added to every feature, relative to the signal")
    shared_dim: int = option(4, "size of the shared factor")
    private_dim: int = option(4, "size of each private factor")
    min_len: int = option(8, "shortest real sequence; lengths are uniform in [min_len, seq_len]")
    three_way: float = option(
        0.0,
        "weight of the label's three-way term: the product of the first private component "
        "of the first three modalities (needs 3 or more modalities)",
    )

    def __post_init__(self) -> None:
        for split in ("n_train", "n_valid", "n_test"):
            if getattr(self, split) < 1:
                raise ConfigError(
                    f"must be 1 or more samples, got {getattr(self, split)}",
                    split,
                    "every split is used: train to fit, valid to select the checkpoint, test to score",
                )
        if not 1 <= len(self.dims) <= 6:
            raise ValueError(f"dims must name 1 to 6 modalities, got {len(self.dims)}")
        bad = {k: v for k, v in self.dims.items() if not isinstance(v, int) or v < 1}
        if bad:
            raise ValueError(f"every dim must be a positive integer, got {bad}")
        if not 1 <= self.min_len <= self.seq_len:
            raise ValueError(f"min_len must be in [1, seq_len={self.seq_len}], got {self.min_len}")
        if self.three_way != 0.0 and len(self.dims) < 3:
            raise ValueError(f"three_way needs at least 3 modalities in dims, got {len(self.dims)}: {list(self.dims)}")
        if self.task == "classification" and self.n_classes < 2:
            raise ValueError("n_classes must be at least 2")


class SyntheticFactors:
    """The generated dataset; ``split(name)`` returns a :class:`TensorSplit`."""

    def __init__(self, cfg: SyntheticConfig) -> None:
        self.cfg = cfg
        self.spec = self.describe(cfg)
        self._splits = self._generate()

    @classmethod
    def describe(cls, cfg: SyntheticConfig) -> DatasetSpec:
        """The spec of the data ``cfg`` generates, without generating them."""
        if cfg.task == "classification":
            task = Task(
                "classification", n_classes=cfg.n_classes, class_names=tuple(f"bin{i}" for i in range(cfg.n_classes))
            )
        else:
            task = Task("regression", range=(-3.0, 3.0), metrics="cmu-sentiment")
        return DatasetSpec(
            name="synthetic-factors",
            modalities=tuple(Modality(m, int(d)) for m, d in cfg.dims.items()),
            task=task,
            seq_len=cfg.seq_len,
            citation="mfm-bench synthetic-factors (generated; no citation needed)",
            licence="generated data, public domain",
            factors=("shared", *(f"private_{m}" for m in cfg.dims)),
        )

    def split(self, name: str) -> TensorSplit:
        if name not in self._splits:
            raise KeyError(f"synthetic-factors has splits {list(self._splits)}, not {name!r}")
        return self._splits[name]

    def _generate(self) -> dict[str, TensorSplit]:
        c = self.cfg
        rng = np.random.default_rng(c.seed)
        T, ks, kp = c.seq_len, c.shared_dim, c.private_dim
        t = np.arange(T) / max(T - 1, 1)
        basis = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), t], axis=1)  # (T, 3)
        width = 32
        maps = {}
        for m, d in c.dims.items():  # fixed random maps, drawn in modality order
            w1 = rng.normal(size=(ks + kp + 3, width)) / np.sqrt(ks + kp + 3)
            w1[ks + kp :] *= 2.0  # time matters
            w2 = rng.normal(size=(width, d)) / np.sqrt(width)
            maps[m] = (w1, w2)
        a = rng.normal(size=ks) / np.sqrt(ks)
        sizes = {"train": c.n_train, "valid": c.n_valid, "test": c.n_test}
        raw: dict[str, dict] = {}
        for split in SPLITS:
            n = sizes[split]
            s = rng.normal(size=(n, ks))
            lengths = rng.integers(c.min_len, T + 1, size=n)
            mask = np.arange(T)[None, :] >= (T - lengths)[:, None]  # left padding: (n, T)
            inputs, factors = {}, {"shared": s}
            for m, (w1, w2) in maps.items():
                p = rng.normal(size=(n, kp))
                z = np.concatenate(
                    [np.repeat(np.concatenate([s, p], 1)[:, None], T, 1), np.broadcast_to(basis, (n, T, 3))], axis=2
                )  # (n, T, ks+kp+3)
                x = np.tanh(z @ w1) @ w2  # (n, T, d)
                x = x + c.noise * x.std() * rng.normal(size=x.shape)
                inputs[m] = x
                factors[f"private_{m}"] = p
            inner = s @ a + 0.5 * s[:, 0] * s[:, min(1, ks - 1)]
            if c.three_way:
                inner = inner + c.three_way * np.prod([factors[f"private_{m}"][:, 0] for m in list(c.dims)[:3]], axis=0)
            y = 3.0 * np.tanh(inner)
            raw[split] = {"inputs": inputs, "mask": mask, "y": y, "factors": factors}
        # Standardise with train statistics over real steps, then zero the padding.
        for m in c.dims:
            real = raw["train"]["inputs"][m][raw["train"]["mask"]]
            mu, sd = real.mean(0), real.std(0) + 1e-6
            for split in SPLITS:
                x = (raw[split]["inputs"][m] - mu) / sd
                raw[split]["inputs"][m] = x * raw[split]["mask"][..., None]
        if c.task == "classification":
            edges = np.quantile(raw["train"]["y"], np.linspace(0, 1, c.n_classes + 1)[1:-1])
            for split in SPLITS:
                raw[split]["y"] = np.searchsorted(edges, raw[split]["y"], side="right")
        import torch  # here, so that describe() and the registry never import it

        out = {}
        for split in SPLITS:
            r = raw[split]
            mask = torch.from_numpy(r["mask"])
            target = torch.from_numpy(r["y"]).long() if c.task == "classification" else torch.from_numpy(r["y"]).float()
            out[split] = TensorSplit(
                inputs={m: torch.from_numpy(x).float() for m, x in r["inputs"].items()},
                mask={m: mask.clone() for m in c.dims},
                target=target,
                ids=[f"{split}-{i:05d}" for i in range(len(r["y"]))],
                factors={f: torch.from_numpy(v).float() for f, v in r["factors"].items()},
            )
        return out
