"""Format-independent preparation of real datasets: the in-memory split, sequence length, standardisation.

Every reader (MFN h5, CSD, pickles) produces :class:`SplitArrays`; the dataset plugins then fit the sequence
length, standardise with statistics of the train split only, and hand out :class:`~mfm_bench.contracts.TensorSplit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SplitArrays:
    """One split as NumPy arrays: ``inputs[m]`` float32 (N, T_m, D_m), ``mask[m]`` bool (N, T_m) (True = real step),
    ``target`` (N,) float32 / int64 or (N, K) float32, ``ids`` N strings."""

    inputs: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    target: np.ndarray
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = int(self.target.shape[0])
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        for m, x in self.inputs.items():
            if x.shape[0] != n or self.mask[m].shape != x.shape[:2]:
                raise ValueError(f"modality {m!r}: inputs {x.shape}, mask {self.mask[m].shape}, {n} targets do not match")
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for {n} targets")

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def to_tensor_split(self):
        """The split as a :class:`~mfm_bench.contracts.TensorSplit` (shares memory with the arrays)."""
        import torch

        from mfm_bench.contracts import TensorSplit

        target = torch.from_numpy(np.ascontiguousarray(self.target))
        target = target.long() if self.target.dtype.kind in "iub" else target.float()
        return TensorSplit(
            inputs={m: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) for m, x in self.inputs.items()},
            mask={m: torch.from_numpy(np.ascontiguousarray(k, dtype=bool)) for m, k in self.mask.items()},
            target=target,
            ids=list(self.ids),
        )


def fit_seq_len(x: np.ndarray, mask: np.ndarray, seq_len: int, pad: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cut or pad (N, T, D) and its (N, T) mask to ``seq_len`` steps.

    ``pad="left"`` (MFN h5, word-aligned CSD): real steps sit at the end, so keep the last steps and pad in front.
    ``pad="right"`` (pickles of unaligned features): real steps sit at the start, so keep the first steps.
    ``pad="auto"``: left when the last step is real at least as often as the first one.
    """
    n, t, d = x.shape
    if pad == "auto":
        pad = "left" if t == 0 or mask[:, -1].mean() >= mask[:, 0].mean() else "right"
    if t == seq_len:
        return x, mask
    if t > seq_len:
        sl = slice(t - seq_len, t) if pad == "left" else slice(0, seq_len)
        return np.ascontiguousarray(x[:, sl]), np.ascontiguousarray(mask[:, sl])
    xo = np.zeros((n, seq_len, d), dtype=x.dtype)
    mo = np.zeros((n, seq_len), dtype=bool)
    sl = slice(seq_len - t, seq_len) if pad == "left" else slice(0, t)
    xo[:, sl], mo[:, sl] = x, mask
    return xo, mo


def standardise(splits: dict[str, SplitArrays], train: str = "train", eps: float = 1e-6) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Z-score every feature in place with the mean and std of the real steps of ``train`` only; padding stays zero.

    A feature that is constant on the training steps is only centred. Returns the statistics
    ``{modality: (mean (D,), std (D,))}`` under key ``"stats"`` for the record.
    """
    stats = {}
    for m, x in splits[train].inputs.items():
        real = x[splits[train].mask[m]]  # (steps, D)
        if real.shape[0] == 0:
            mu, sd = np.zeros(x.shape[-1], np.float64), np.ones(x.shape[-1], np.float64)
        else:
            mu = real.mean(0, dtype=np.float64)
            sd = real.std(0, dtype=np.float64)
            sd = np.where(sd < eps, 1.0, sd)
        stats[m] = (mu.astype(np.float32), sd.astype(np.float32))
        for s in splits.values():
            y = (s.inputs[m] - stats[m][0]) / stats[m][1]
            y[~s.mask[m]] = 0.0
            s.inputs[m] = y.astype(np.float32)
    return {"stats": stats}
