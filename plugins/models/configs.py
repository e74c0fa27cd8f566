"""Config dataclasses of the built-in models, in a module that does not import torch.

The registry imports a plugin's config (``"module:attr"``) to check a suite's params; keeping every config here
lets ``mfm-bench validate`` check suites without importing torch or the model code. Each model module
imports its config from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from mfm_bench.config import option, plugin

from .mfm_presets import FROM_PRESET, apply_preset, preset_help

#: how to give a built-in dataset more modalities, for the models that need two or more (``min_modalities``)
MORE_MODALITIES = (
    "give the dataset two or more modalities (synthetic-factors: params: {dims: {text: 300, audio: 5}}; "
    "cmu-mosi, cmu-mosei, ict-mmmo, youtube, moud, iemocap, pom and tensors: params: {modalities: [text, audio]}, "
    "or no modalities param for every modality)"
)


@dataclass
class SupervisedConfig:
    encoder: str | dict = plugin(
        "encoder", "lstm", "encoder name for every modality, or a mapping {modality: name, default: name}"
    )
    encoder_params: dict = option({}, "params for the encoder(s)")
    fusion: str = plugin("fusion", "concat", "fusion plugin name")
    fusion_params: dict = option({}, "params for the fusion")
    head_hidden: int = option(64, "hidden width of the prediction head (0: one Linear)", min=0)
    head_dropout: float = option(0.1, "dropout inside the prediction head", min=0, max=1)
    drop: list[str] = option(
        [],
        "modalities removed from every batch (zeros, all-False mask) in training and at test: "
        "a model that never sees them, as the original MFM's basic_missing baseline",
    )


Variant = Literal["full", "shared_generative", "no_discriminative", "no_generative", "discriminative_only", "kl"]


VARIANTS: tuple[str, ...] = (
    "full",
    "shared_generative",
    "no_discriminative",
    "no_generative",
    "discriminative_only",
    "kl",
)


@dataclass
class MFMConfig:
    #: z_y is read from the fusion's vector: a fusion that predicts labels (late, tfn, lmf, mult) is refused
    predicting_fusions: ClassVar[bool] = False
    preset: Literal["default", "original", "mmsa"] = option(
        "default",
        "credited setting that fills every field marked (preset): original (pliang279/factorized best_acc), "
        "mmsa (MMSA config_regression.json), default (the original's numbers, padded steps skipped); docs/mfm.md",
    )
    variant: Variant = option(
        "full", "full MFM or an ablation: shared_generative, no_discriminative, no_generative, discriminative_only, kl"
    )
    encoder: str | dict = plugin(
        "encoder", "lstm", "encoder plugin of the generative codes z_a(i) (a name, or {modality: name, default: name})"
    )
    encoder_params: dict = option({}, "params of the generative (and surrogate) encoders")
    fusion: str = plugin("fusion", "mfn", "fusion plugin giving the discriminative code z_y (the paper: MFN)")
    fusion_params: dict = option({}, "params of the fusion")
    zy: int = option(FROM_PRESET, preset_help("zy", "size of the discriminative code z_y"), min=1)
    za: int | dict = option(
        FROM_PRESET,
        preset_help(
            "za",
            "size of each generative code z_a(i): a number or {modality: size, default: size} "
            "('shared' names the shared_generative code)",
        ),
        min=1,
        modality_keys=("default", "shared"),
    )
    fy: int = option(FROM_PRESET, preset_help("fy", "size of the discriminative factor F_y"), min=1)
    fa: int | dict = option(
        FROM_PRESET,
        preset_help("fa", "size of each generative factor F_a(i): a number or {modality: size, default: size}"),
        min=1,
        modality_keys=("default", "shared"),
    )
    factor_dropout: float | dict = option(
        FROM_PRESET,
        preset_help("factor_dropout", "dropout inside the z -> F maps: a number or {zy: p, modality: p, default: p}"),
        min=0,
        max=1,
        modality_keys=("default", "zy", "shared"),
    )
    head_hidden: int | None = option(
        FROM_PRESET,
        preset_help(
            "head_hidden",
            "hidden width of the label head D; null: fy, as the original Linear(fy, fy) (no_discriminative: "
            "Linear(sum of F_a, fy), as M_B; discriminative_only: one Linear, as M_D)",
        ),
        min=0,
    )
    head_dropout: float = option(
        FROM_PRESET,
        preset_help("head_dropout", "dropout inside the label head D (the original's fy_to_y_dropout)"),
        min=0,
        max=1,
    )
    lambda_mmd: float = option(
        FROM_PRESET, preset_help("lambda_mmd", "weight of the MMD prior term, summed over all codes"), min=0
    )
    kernel: Literal["original", "rbf", "imq"] = option(
        "original", "MMD kernel: original (exp(-||x-y||^2/dim^2), biased estimator), rbf or imq (unbiased estimators)"
    )
    lambda_x: float | dict = option(
        FROM_PRESET,
        preset_help("lambda_x", "reconstruction weight per modality: a number or {modality: weight, default: weight}"),
        min=0,
        modality_keys=("default",),
        every_modality=True,
    )
    encoder_width: Literal["code", "plugin"] = option(
        FROM_PRESET,
        preset_help(
            "encoder_width",
            "width of the generative and surrogate encoders: code (each as wide as its code, as the original "
            "encoderLSTM: LSTMCell(d, z), Linear(z, z); overrides encoder_params.hidden) or plugin "
            "(encoder_params as given)",
        ),
    )
    select_on: Literal["label", "total"] = option(
        FROM_PRESET,
        preset_help(
            "select_on",
            "checkpoint the trainer keeps when its select_on is auto: the lowest validation label loss, "
            "or the lowest total (surrogate terms included when surrogate is true)",
        ),
    )
    mask_padding: bool = option(
        False, "leave padded steps out of the reconstruction loss (the original reconstructs the zero padding too)"
    )
    lambda_kl: float = option(
        1.0,
        "weight of the KL prior term of the kl variant (KL summed over code dims, averaged over the batch)",
        min=0,
    )
    kl_reduction: Literal["mean", "sum"] = option(
        "mean", "kl variant: the KL averaged over the batch (mean) or summed over it (sum, as the original loss_KLD)"
    )
    kl_encoder: Literal["direct", "original"] = option(
        "direct",
        "kl variant: each generative code's mean and log-variance are one Linear each from the encoder state "
        "(direct) or follow an inner Linear to the code size (original, as MFM_KL: encoderLSTM's Linear, then "
        "last_to_z*_fc1 and last_to_logvarz*_fc1)",
    )
    kl_sample: bool = option(
        True,
        "kl variant: decoders and head read z = mu + exp(logvar/2) * eps in training (true) or the means "
        "(false, as the original MFM_KL, which never samples)",
    )
    surrogate: bool = option(
        False, "train surrogate encoders for missing modalities and use them when a modality is missing"
    )
    lambda_surrogate: float = option(
        1.0, "weight of the MSE between surrogate codes and the (detached) full-model codes", min=0
    )
    surrogate_task_weight: float = option(
        1.0, "weight of the label and reconstruction losses computed from surrogate codes", min=0
    )
    surrogate_grad: Literal["frozen", "joint"] = option(
        "frozen",
        "what the surrogate terms train: frozen (only the surrogate encoders: targets detached, shared modules "
        "frozen) or joint (every module, as the original MFM_missing's single summed loss)",
    )
    decoder: str | dict = option(
        "lstm",
        "decoder G_i of each modality: a name or {modality: name, default: name}; lstm "
        "(sequences; vectors as one step), conv-image (images), mlp or conv-signal (vectors)",
        modality_keys=("default",),
        every_modality=True,
    )
    impl: Literal["reference", "fast"] = option(
        "fast",
        "decoders and MMD: fast (whole-sequence LSTM kernel after step 0; the MMD as one node with its "
        "closed-form gradient) or reference (one cell call per step; the MMD through autograd); "
        "same math and parameters. The MFN fusion has its own impl in fusion_params",
    )

    def __post_init__(self) -> None:
        apply_preset(self)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        for name in ("za", "fa"):
            value = getattr(self, name)
            values = value.values() if isinstance(value, dict) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                raise ValueError(f"{name} must be a positive integer or a mapping of positive integers, got {value!r}")
        values = self.lambda_x.values() if isinstance(self.lambda_x, dict) else [self.lambda_x]
        if not all(isinstance(v, (int, float)) and v >= 0 for v in values):
            raise ValueError(f"lambda_x must be a non-negative number or a mapping of them, got {self.lambda_x!r}")
        if self.zy < 1 or self.fy < 1:
            raise ValueError("zy and fy must be positive")


@dataclass
class MCTNConfig:
    #: a source and at least one target: validate refuses a dataset with fewer modalities
    min_modalities: ClassVar[int] = 2
    source: str = option("", "the source modality, the only one read at test time (empty: the first of the dataset)")
    targets: list = option([], "modalities translated to, in order (empty: every other modality, in dataset order)")
    hidden: int = option(
        32, "width of the encoders, decoders and predictor (reference hidden_dim and reg_hidden_dim 32)", min=1
    )
    bidirectional: bool = option(
        True,
        "encoders read the source both ways, directions summed, as the reference "
        "(configs/mctn.yaml is_bidirectional); false: one direction (our earlier model)",
    )
    pooling: Literal["attention", "last"] = option(
        "attention",
        "predictor summary: attention over its steps (reference regression_model.py); last: the state at "
        "the last real step (our earlier model)",
    )
    l2: float = option(0.01, "L2 penalty on the output layer's weights (reference l2_factor 0.01; 0 for none)", min=0)
    dropout: float = option(
        0.0, "dropout on the joint representation and inside the head (reference: none)", min=0, max=1
    )
    head_hidden: int = option(
        0,
        "hidden width of the prediction head (0: one Linear, as the reference's Dense(1); "
        "64 with dropout 0.1, l2 0 restores our earlier head)",
        min=0,
    )
    label_weight: float = option(1.0, "weight of the task loss (reference regression loss_weight 1.0)", min=0)
    translation_weight: float = option(
        0.1, "weight of the translation losses (MSE to each target; reference 0.1)", min=0
    )
    cycle_weight: float = option(
        0.1, "weight of the cycle-consistency loss (MSE back to the source; reference 0.1)", min=0
    )


@dataclass
class MISAConfig:
    encoder: str | dict = plugin(
        "encoder", "lstm", "encoder name for every modality, or a mapping {modality: name, default: name}"
    )
    encoder_params: dict = option({}, "params for the encoder(s)")
    hidden: int = option(
        32,
        "width of the utterance, invariant and specific vectors (reference hidden_size 128, config.py:103)",
        min=1,
    )
    heads: int = option(2, "attention heads of the fusion layer (must divide hidden)", min=1)
    dropout: float = option(0.5, "dropout in the fusion MLP (reference config.py dropout 0.5)", min=0, max=1)
    attn_dropout: float = option(
        0.1, "dropout in the attention layer (reference: nn.TransformerEncoderLayer's 0.1)", min=0, max=1
    )
    head_hidden: int = option(
        0,
        "hidden width of the prediction head (0: one Linear, as the reference's fusion_layer_3; "
        "64 with dropout 0.1 restores our earlier head)",
        min=0,
    )
    regression_loss: Literal["mse", "l1"] = option(
        "mse", "loss of (multi-)regression targets: mse as the reference's solver; l1 as MFM trains (our earlier model)"
    )
    detach_norm: bool = option(
        True,
        "detach the L2 norms in the difference loss, as the reference DiffLoss; "
        "false: gradients flow through the normalisation (our earlier loss)",
    )
    sim_weight: float = option(1.0, "weight of the similarity loss (CMD between invariant vectors)", min=0)
    diff_weight: float = option(
        0.3, "weight of the difference loss (orthogonality of invariant and specific vectors)", min=0
    )
    recon_weight: float = option(1.0, "weight of the reconstruction loss", min=0)
    cmd_moments: int = option(5, "central moments matched by the CMD", min=1)

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.cmd_moments < 1:
            raise ValueError(f"cmd_moments must be at least 1, got {self.cmd_moments}")


@dataclass
class SymileConfig:
    #: a contrastive objective needs two or more: validate refuses a dataset with fewer modalities
    min_modalities: ClassVar[int] = 2
    objective: Literal["symile", "clip"] = option("symile", "symile (multilinear inner product) or clip (pairwise)")
    negatives: Literal["n", "n_squared"] = option(
        "n", "Symile negatives: n (O(N), shuffled tuples) or n_squared (all N^(M-1) tuples; small batches only)"
    )
    encoder: Any = option(
        None,
        "encoder for every modality, or a mapping modality -> encoder; a modality without "
        "one gets its kind's (image: conv-image, vector: conv-signal, sequence: lstm)",
    )
    encoder_params: dict = option({}, "params for every encoder")
    dim: int = option(32, "width d of the shared representation space", min=1)
    temperature: float = option(0.07, "initial softmax temperature (learned, as in CLIP and Symile)")
    weight: float = option(1.0, "weight of the contrastive loss", min=0)

    def __post_init__(self) -> None:
        if self.dim < 1 or self.temperature <= 0 or self.weight < 0:
            raise ValueError(
                f"dim must be positive, temperature > 0 and weight >= 0; got dim={self.dim}, "
                f"temperature={self.temperature}, weight={self.weight}"
            )


@dataclass
class LadderConfig:
    #: cross-modal reconstruction needs two or more: validate refuses a dataset with fewer modalities
    min_modalities: ClassVar[int] = 2
    backbone: Literal["mlp", "lstm"] = option("mlp", "per-modality backbone: mlp (masked mean, Linear-ReLU) or lstm")
    hidden: int = option(32, "width of the backbone and of every ladder layer", min=1)
    layers: int = option(2, "ladder layers per modality (intermediate representations that are reconstructed)", min=1)
    noise: float = option(0.3, "std of the Gaussian noise of the corrupted encoder path (training only)", min=0)
    aux_weight: float = option(1.0, "weight of the cross-modal reconstruction (unsupervised auxiliary) loss", min=0)
    head_hidden: int = option(64, "hidden width of the prediction head (0: one Linear)", min=0)
    dropout: float = option(0.1, "dropout inside the prediction head", min=0, max=1)

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"hidden and layers must be positive, got hidden={self.hidden}, layers={self.layers}")
        if self.noise < 0 or self.aux_weight < 0:
            raise ValueError(f"noise and aux_weight must be >= 0, got noise={self.noise}, aux_weight={self.aux_weight}")
