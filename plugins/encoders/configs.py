"""Config dataclasses of the built-in encoders, in a module that does not import torch.

The registry imports a plugin's config (``"module:attr"``) to check a suite's params; keeping every config here
lets ``mfm-bench validate`` check suites without importing torch or the model code. Each encoder module
imports its config from here. ``modality_kinds`` (a class attribute, not a param) says which modality kinds the
encoder reads; ``validate`` and the models refuse any other (:mod:`mfm_bench.encoder_kinds`). ``min``/``max``
bound sizes and rates, so ``encoder_params: {hidden: 0}`` is refused by ``validate``, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mfm_bench.config import option


@dataclass
class MeanConfig:
    modality_kinds: ClassVar[tuple[str, ...]] = ("sequence", "vector")  # a vector is one step
    hidden: int = option(32, "MLP width and output size", min=1)
    dropout: float = option(0.0, "dropout after the MLP", min=0, max=1)


@dataclass
class RNNConfig:
    modality_kinds: ClassVar[tuple[str, ...]] = ("sequence", "vector")  # a vector is one step
    hidden: int = option(32, "hidden size per direction", min=1)
    layers: int = option(1, "stacked recurrent layers", min=1)
    dropout: float = option(0.0, "dropout between layers and on the output", min=0, max=1)
    bidirectional: bool = option(False, "read the sequence both ways (pooled = both final states)")


@dataclass
class ConvConfig:
    hidden: int = option(32, "output size (pooled width) and channels of the last conv layer", min=1)
    channels: int = option(16, "channels of the first conv layer (the second has 2x, the last `hidden`)", min=1)
    dropout: float = option(0.0, "dropout on the pooled output", min=0, max=1)

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.channels < 1:
            raise ValueError(
                f"hidden and channels must be positive, got hidden={self.hidden}, channels={self.channels}"
            )


@dataclass
class ImageConvConfig(ConvConfig):
    modality_kinds: ClassVar[tuple[str, ...]] = ("image",)


@dataclass
class SignalConvConfig(ConvConfig):
    modality_kinds: ClassVar[tuple[str, ...]] = ("vector", "sequence")
