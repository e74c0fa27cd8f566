"""Config dataclasses of the built-in fusions, in a module that does not import torch.

The registry imports a plugin's config (``"module:attr"``) to check a suite's params; keeping every config here
lets ``mfm-bench validate`` check suites without importing torch or the model code. Each fusion module
imports its config from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mfm_bench.config import option


@dataclass
class ConcatConfig:
    hidden: int = option(64, "width of the fused vector", min=1)
    dropout: float = option(0.1, "dropout on the fused vector", min=0, max=1)


@dataclass
class LateConfig:
    hidden: int = option(32, "hidden width of each unimodal head", min=1)
    dropout: float = option(0.1, "dropout inside each head", min=0, max=1)
    weighting: Literal["mean", "learned"] = option(
        "mean", "mean: plain mean of the unimodal predictions; learned: softmax of one learned logit per modality"
    )


@dataclass
class MFNConfig:
    hidden: int | dict = option(
        {"default": 32}, "LSTM hidden size per modality: a number, or {modality: size, default: size}", min=1
    )
    memory: int = option(64, "size of the multi-view gated memory (MFM's tuned MOSI setting: 64)", min=1)
    window: int = option(2, "steps of cell states the attention reads (the paper's Delta-memory: 2)", min=1)
    attention_hidden: int = option(32, "hidden width of the attention MLP (NN1 in the original code)", min=1)
    memory_hidden: int = option(32, "hidden width of the MLP proposing the memory update (NN2)", min=1)
    gamma_hidden: int | list[int] = option(
        32,
        "hidden width of the two gate MLPs: one number for both, or [gamma1, gamma2] (MMSA's MOSI setting: [32, 64])",
    )
    attention_dropout: float = option(0.0, "dropout inside the attention MLP", min=0, max=1)
    memory_dropout: float = option(0.0, "dropout inside the memory-proposal MLP", min=0, max=1)
    gamma_dropout: float | list[float] = option(
        0.0, "dropout inside the gate MLPs: one number for both, or [gamma1, gamma2]"
    )
    skip_padding: bool = option(
        True, "keep the state unchanged at padded steps (false: run over padding like the original)"
    )
    impl: Literal["reference", "fast"] = option(
        "fast",
        "fast: grouped cells and fused MLPs (mfn_fast.py); reference: one cell and MLP call at a time. "
        "Same math and parameters",
    )

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        if self.memory < 1:
            raise ValueError(f"memory must be at least 1, got {self.memory}")
        for name in ("gamma_hidden", "gamma_dropout"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and len(value) != 2:
                raise ValueError(f"{name} must be one number or a list of two (gamma1, gamma2), got {value!r}")

    def gate(self, i: int) -> tuple[int, float]:
        """(hidden width, dropout) of gate MLP ``i`` (0: gamma1, 1: gamma2)."""
        pick = lambda v: v[i] if isinstance(v, (list, tuple)) else v  # noqa: E731
        return int(pick(self.gamma_hidden)), float(pick(self.gamma_dropout))


@dataclass
class EFLSTMConfig:
    hidden: int = option(
        64,
        "LSTM hidden size (per direction); the fused vector has this width (the reference's example run: h 128, "
        "test_mosi.py:568-574)",
        min=1,
    )
    layers: int = option(1, "stacked LSTM layers", min=1)
    dropout: float = option(
        0.1, "dropout between stacked LSTM layers (none with one layer, as the reference)", min=0, max=1
    )
    fused_dropout: float = option(
        0.0,
        "dropout on the fused vector before the head (reference: none, its dropout "
        "sits inside the head; 0.1 restores our earlier model)",
        min=0,
        max=1,
    )
    bidirectional: bool = option(
        False, "read the joint sequence both ways (fused vector: both directions' final states, 2 x hidden wide)"
    )


@dataclass
class TFNConfig:
    proj_dim: int = option(
        8,
        "width each modality is projected to before the outer product (0: use the encoder width); reference "
        "subnetwork outputs: audio 4, video 16, text 64 (train.py:82)",
        min=0,
    )
    hidden: int = option(
        32,
        "width of the two fully connected layers after the fusion (reference post_fusion_dim 32, train.py:82; "
        "64 restores our earlier network)",
        min=1,
    )
    dropout: float = option(
        0.3,
        "dropout on the flattened tensor (reference post_fusion_prob 0.3, train.py:82; 0.15 restores our earlier "
        "network)",
        min=0,
        max=1,
    )
    hidden_dropout: float = option(
        0.0,
        "dropout after each fully connected layer (reference: none; 0.15 with head: true restores our earlier network)",
        min=0,
        max=1,
    )
    head: bool = option(
        False,
        "false: a third Linear layer predicts, as the reference; true: output the hidden "
        "vector for the supervised model's MLP head, no squash (our earlier network)",
    )
    output_range: Any = option(
        "task",
        "squash a regression prediction with sigmoid * (hi - lo) + lo, as the "
        "reference's sigmoid * 6 - 3: 'task' uses the dataset's range (MOSI: [-3, 3]), "
        "[lo, hi] a fixed one, [] none",
    )
    max_tensor: int = option(250_000, "largest allowed size of the flattened tensor, prod(d_m + 1)", min=1)

    def __post_init__(self) -> None:
        r = self.output_range
        if r != "task" and not (isinstance(r, list) and (not r or (len(r) == 2 and r[0] < r[1]))):
            raise ValueError(f"output_range must be 'task', [lo, hi] with lo < hi, or [] for no squash; got {r!r}")


@dataclass
class LMFConfig:
    rank: int = option(4, "rank r of the factorised weight tensor", min=1)
    head: bool = option(
        False,
        "false: the low-rank product is the prediction, as the reference; true: it outputs "
        "a ``hidden``-wide vector for the supervised model's MLP head (our earlier network)",
    )
    hidden: int = option(
        32, "width of the fused vector h with head: true (ignored otherwise: h has the task's width)", min=1
    )
    proj_dim: int = option(
        0, "project each modality to this width first (0: use the encoder width, as the paper does)", min=0
    )
    dropout: float = option(
        0.0, "dropout on the modality vectors (reference: none; 0.1 restores our earlier network)", min=0, max=1
    )


@dataclass
class MulTConfig:
    d_model: int = option(32, "common width d of every projected sequence (reference: 30)", min=1)
    heads: int = option(4, "attention heads (must divide d_model; reference: 5)", min=1)
    layers: int = option(2, "layers of each crossmodal transformer (reference: 5)", min=1)
    self_layers: int = option(
        1,
        "layers of the self-attention transformer over each target's concatenated outputs (reference: max(layers, 3))",
        min=1,
    )
    kernel: int = option(
        1, "kernel size of the temporal 1-D convolution projecting each modality (odd; reference: 1)", min=1
    )
    dropout: float = option(0.1, "dropout on residual branches (reference res_dropout 0.1)", min=0, max=1)
    relu_dropout: float = option(
        0.1, "dropout between the feed-forward layers (reference relu_dropout 0.1)", min=0, max=1
    )
    attn_dropout: float | dict = option(
        {"text": 0.1, "default": 0.0},
        "dropout on the attention weights of each crossmodal transformer, by its source (key) modality: one number "
        "for every source, or {modality: p, default: p}; reference: attn_dropout 0.1 where text is the source, "
        "attn_dropout_a / attn_dropout_v 0.0 where audio / visual is (main.py:30-35, models.py:67-73); 0.1 restores "
        "our earlier model",
        min=0,
        max=1,
        modality_keys=("default",),
    )
    self_attn_dropout: float = option(
        0.1,
        "dropout on the attention weights of the self-attention stacks (reference: attn_dropout 0.1, models.py:74-79)",
        min=0,
        max=1,
    )
    embed_dropout: float = option(
        0.25, "dropout on each transformer's scaled, position-embedded input (reference 0.25)", min=0, max=1
    )
    input_dropout: float | dict = option(
        {"text": 0.25, "default": 0.0},
        "dropout on each modality's raw input before its projection: one number for every modality, or "
        "{modality: p, default: p}; reference: embed_dropout 0.25 on the text only (models.py:96); 0 restores our "
        "earlier model",
        min=0,
        max=1,
        modality_keys=("default",),
    )
    out_dropout: float = option(
        0.0, "dropout inside the residual output block (reference out_dropout 0.0)", min=0, max=1
    )
    causal: bool = option(
        True,
        "causal attention in every layer, as the reference's default attn_mask "
        "(main.py: --attn_mask is store_false); false: every step reads every step",
    )
    shared_norm: bool = option(
        True,
        "one LayerNorm for queries, keys and values, as the reference layer; "
        "false: keys/values get their own LayerNorm (our earlier layer)",
    )
    rescale_self: bool = option(
        True,
        "re-scale by sqrt(width) and add position embeddings before the self-attention "
        "stack, as the reference's TransformerEncoder does; false: our earlier stack",
    )
    padding_mask: bool = option(
        True,
        "ignore padded steps (keys and the summary step) and missing modalities: an "
        "extension; false: as the reference, attend to every step, summary at the last",
    )
    head: bool = option(
        False,
        "false: a Linear output layer predicts, as the reference; true: output the fused "
        "vector for the supervised model's MLP head (our earlier network)",
    )

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number, got {self.kernel}")
        for name in ("attn_dropout", "input_dropout"):
            p = getattr(self, name)
            if isinstance(p, dict):
                bad = {k: v for k, v in p.items() if not isinstance(v, (int, float)) or not 0 <= v < 1}
                if bad or "default" not in p:
                    raise ValueError(
                        f"{name} must be a number in [0, 1) or {{modality: p, default: p}} with a 'default' key "
                        f"and every p in [0, 1); got {p!r}"
                    )
            elif not 0 <= p < 1:
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
