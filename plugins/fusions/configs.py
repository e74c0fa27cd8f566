"""Config dataclasses of the built-in fusions, in a module that does not import torch.

The registry imports a plugin's config (``"module:attr"``) to check a suite's params; keeping every config here
lets ``mfm-bench validate`` check suites without importing torch or the model code. Each fusion module
imports its config from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mfm_bench.config import option

@dataclass
class ConcatConfig:
    hidden: int = option(64, "width of the fused vector")
    dropout: float = option(0.1, "dropout on the fused vector")


@dataclass
class LateConfig:
    hidden: int = option(32, "hidden width of each unimodal head")
    dropout: float = option(0.1, "dropout inside each head")
    weighting: Literal["mean", "learned"] = option(
        "mean", "mean: plain mean of the unimodal predictions; learned: softmax of one learned logit per modality")


@dataclass
class MFNConfig:
    hidden: int | dict = option({"default": 32}, "LSTM hidden size per modality: a number, or {modality: size, default: size}")
    memory: int = option(64, "size of the multi-view gated memory (MFM's tuned MOSI setting: 64)")
    window: int = option(2, "steps of cell states the attention reads (the paper's Delta-memory: 2)")
    attention_hidden: int = option(32, "hidden width of the attention MLP (NN1 in the original code)")
    memory_hidden: int = option(32, "hidden width of the MLP proposing the memory update (NN2)")
    gamma_hidden: int = option(32, "hidden width of the two gate MLPs (gamma1, gamma2)")
    attention_dropout: float = option(0.0, "dropout inside the attention MLP")
    memory_dropout: float = option(0.0, "dropout inside the memory-proposal MLP")
    gamma_dropout: float = option(0.0, "dropout inside the gate MLPs")
    skip_padding: bool = option(True, "keep the state unchanged at padded steps (false: run over padding like the original)")

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        if self.memory < 1:
            raise ValueError(f"memory must be at least 1, got {self.memory}")


@dataclass
class EFLSTMConfig:
    hidden: int = option(64, "LSTM hidden size (per direction); the fused vector has this width")
    layers: int = option(1, "stacked LSTM layers")
    dropout: float = option(0.1, "dropout between layers and on the fused vector")
    bidirectional: bool = option(False, "read the joint sequence both ways")


@dataclass
class TFNConfig:
    proj_dim: int = option(8, "width each modality is projected to before the outer product (0: use the encoder width)")
    hidden: int = option(64, "width of the two fully connected layers after the fusion; the fused vector's width")
    dropout: float = option(0.15, "dropout on the flattened tensor and between the fully connected layers")
    max_tensor: int = option(250_000, "largest allowed size of the flattened tensor, prod(d_m + 1)")


@dataclass
class LMFConfig:
    rank: int = option(4, "rank r of the factorised weight tensor")
    hidden: int = option(32, "width of the fused vector h")
    proj_dim: int = option(0, "project each modality to this width first (0: use the encoder width, as the paper does)")
    dropout: float = option(0.1, "dropout on the modality vectors")


@dataclass
class MulTConfig:
    d_model: int = option(32, "common width d of every projected sequence")
    heads: int = option(4, "attention heads (must divide d_model)")
    layers: int = option(2, "layers of each crossmodal transformer")
    self_layers: int = option(1, "layers of the self-attention transformer over each target's concatenated outputs")
    kernel: int = option(1, "kernel size of the temporal 1-D convolution projecting each modality (odd)")
    dropout: float = option(0.1, "dropout on residual branches and the output block")
    attn_dropout: float = option(0.1, "dropout on attention weights")
    embed_dropout: float = option(0.1, "dropout on the projected, position-embedded inputs")

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number, got {self.kernel}")
