"""The ``train:`` section of a suite as a config dataclass, in a module that does not import torch, so that
``mfm-bench validate`` checks it without paying for torch. :mod:`mfm_bench.training` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .config import ConfigError, option

#: ``torch.compile`` modes ``compile:`` takes besides true (``default``) and false. ``reduce-overhead`` records
#: CUDA graphs on CUDA (on the CPU it compiles as ``default``).
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]

#: Train options added after run ids existed, with the value each had before it was an option: at that value a
#: field is left out of a run's identity (:func:`identity`), so the runs of a suite that does not set it keep their
#: ids; any other value is a new run.
ID_NEUTRAL = {"batch_order": "shuffle", "drop_last": False}


def identity(train: dict) -> dict:
    """The resolved ``train:`` options that make a run's identity: ``train`` without the :data:`ID_NEUTRAL` fields
    that hold their neutral value."""
    return {k: v for k, v in train.items() if not (k in ID_NEUTRAL and v == ID_NEUTRAL[k])}


#: Batch size for validation, test and every other no-grad pass (evaluation, probes, explanations).
EVAL_BATCH_SIZE = 256


@dataclass
class TrainConfig:
    epochs: int = option(50, "maximum training epochs")
    batch_size: int = option(32, "training batch size")
    lr: float = option(1e-3, "Adam learning rate")
    weight_decay: float = option(0.0, "Adam weight decay")
    early_stop: int = option(8, "stop after this many epochs without a better validation loss (0: never); 8 is MMSA's")
    select_on: Literal["auto", "label", "total"] = option(
        "auto",
        "validation loss that picks the checkpoint (and drives early stopping and the plateau schedule): label, "
        "total (every loss term summed, as the original MFM with surrogates) or auto (the model's select_on "
        "attribute, else label)",
    )
    scheduler: Literal["none", "plateau"] = option(
        "none", "learning-rate schedule; plateau = ReduceLROnPlateau on the validation loss"
    )
    plateau_factor: float = option(0.5, "ReduceLROnPlateau factor")
    plateau_patience: int = option(3, "ReduceLROnPlateau patience in epochs")
    grad_clip: float = option(0.0, "clip the gradient norm to this value (0: no clipping)")
    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = option(
        0,
        "CPU threads for torch's intra-op work; 0 (auto): $OMP_NUM_THREADS when set, else 1 for "
        "models under 5M parameters, else the cores this process may use (docs/performance.md)",
    )
    amp: bool = option(True, "bf16 autocast on CUDA (ignored on CPU)")
    compile: bool | CompileMode = option(
        False,
        "torch.compile the model first: true (mode default) or a torch.compile mode; reduce-overhead also records "
        "CUDA graphs on CUDA",
    )
    eval_batch_size: int = option(EVAL_BATCH_SIZE, "batch size for validation and test")
    batch_order: Literal["shuffle", "fixed"] = option(
        "shuffle",
        "order of the training samples: shuffle (a new permutation every epoch, as MMSA's DataLoader) or fixed (one "
        "permutation drawn from the seed before the first epoch, the same batches in the same order every epoch, as "
        "the original MFM: pliang279/factorized mfm_mosi.py L387-389, L424-426)",
    )
    drop_last: bool = option(
        False,
        "drop the last training batch when it is smaller than batch_size (the original MFM does: "
        "num_batches = total_n / batchsize, integer division, mfm_mosi.py L422-424); false keeps it, as MMSA",
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        # below zero these would not fail but change the training: early_stop -1 stopped after the first epoch, a
        # negative grad_clip clipped nothing, a negative weight_decay rewarded large weights
        for name, zero in (("early_stop", "never stop early"), ("grad_clip", "no clipping"), ("weight_decay", "none")):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be 0 ({zero}) or more, got {getattr(self, name)}", name)
        if not 0 < self.plateau_factor < 1:
            raise ConfigError(
                f"must be between 0 and 1 (the learning rate is multiplied by it), got {self.plateau_factor}",
                "plateau_factor",
                "0.5 halves the rate; the original MFM uses 0.1",
            )
        if self.plateau_patience < 0:
            raise ConfigError(f"must be 0 or more epochs, got {self.plateau_patience}", "plateau_patience")
        if self.batch_order not in ("shuffle", "fixed"):
            raise ConfigError(
                f"must be one of 'shuffle', 'fixed', got {self.batch_order!r}",
                "batch_order",
                "fixed with drop_last: true is the original MFM's batching",
            )
        if self.threads < 0:
            raise ConfigError(f"must be 0 (auto) or a positive count, got {self.threads}", "threads")
