"""Built-in models: factory(spec, cfg) -> nn.Module with forward(batch) -> Output."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.models"


@hookimpl
def register_commands(register):
    register(
        "explain",
        f"{_P}.mfm_explain",
        help="MFM interpretation: gradient of each reconstruction w.r.t. F_y and F_a(i) over time (CSV + heat-map)",
    )
    register(
        "generate",
        f"{_P}.mfm_generate_cli",
        help="MFM on images: conditional generation grid (rows share z_y, columns z_a), read by a digit classifier",
    )


@hookimpl
def register_models(register):
    register(
        "supervised",
        f"{_P}.supervised:SupervisedModel",
        config=f"{_P}.configs:SupervisedConfig",
        help="encoders per modality, a fusion plugin and a task head (the generic baseline)",
    )
    register(
        "mfm",
        f"{_P}.mfm:MFM",
        config=f"{_P}.configs:MFMConfig",
        help=(
            "Multimodal Factorization Model (Tsai et al. 2019): discriminative + per-modality generative factors, "
            "MMD prior, ablations, surrogate inference"
        ),
    )
    register(
        "mctn",
        f"{_P}.mctn:MCTN",
        config=f"{_P}.configs:MCTNConfig",
        help=(
            "Multimodal Cyclic Translation Network: source -> targets translation with a cycle loss; "
            "test time reads the source only"
        ),
    )
    register(
        "misa",
        f"{_P}.misa:MISA",
        config=f"{_P}.configs:MISAConfig",
        help=(
            "MISA: modality-invariant and -specific vectors (CMD, orthogonality, reconstruction losses), "
            "attention over them"
        ),
    )
    register(
        "symile",
        f"{_P}.symile:Symile",
        config=f"{_P}.configs:SymileConfig",
        help=(
            "Symile (Saporta et al. 2024): multilinear-inner-product contrastive loss for any number of modalities, "
            "or pairwise CLIP; linear probe + zero-shot retrieval"
        ),
    )
    register(
        "ladder",
        f"{_P}.ladder:Ladder",
        config=f"{_P}.configs:LadderConfig",
        help=(
            "cross-modal ladder networks (ICASSP 2023, doi:10.1109/ICASSP49357.2023.10096138): backbones, "
            "noisy ladder encoders, decoders rebuilding the other modality's layers through skip connections"
        ),
    )


@hookimpl
def register_metrics(register):
    # MFM rebuilds a withheld modality from the factors it still has (extras["metric_sums"], mfm.py)
    register(
        "recon_missing_*",
        False,
        section="reconstruction of the missing modality",
        help="MFM: mean squared error of the rebuilt modality at its real steps, under a missing-modality condition",
    )
    # Symile/CLIP: zero-shot retrieval within a batch; ladder: how well each modality rebuilds the other's layers
    # MFM on image data: the conditional generation grid, read by a classifier of the real images (mfm_generate.py)
    gen = "conditional generation (images)"
    register(
        "gen_row_agreement",
        True,
        section=gen,
        label="row agreement",
        help="MFM: share of generated images a classifier of real images reads as their row's (z_y donor's) label",
    )
    register(
        "gen_column_agreement",
        None,
        section=gen,
        label="column agreement",
        rank=False,
        help="MFM: share read as their column's (z_a donor's) label: the label leaking into the private code",
    )
    register(
        "gen_missing_acc",
        True,
        section=gen,
        label="missing image read",
        help="MFM: the classifier's accuracy on the image rebuilt from the other modalities alone",
    )
    register(
        "gen_classifier_acc",
        None,
        section=gen,
        label="real image read",
        rank=False,
        help="the classifier's accuracy on the real test images (the ceiling of the generation metrics)",
    )
    register("gen_chance", None, section=gen, label="chance", rank=False, help="1 / number of classes")
    register("retrieval_acc", True, help="Symile/CLIP: share of tuples whose missing member is retrieved in the batch")
    register("xmodal_recon_mse", False, help="ladder: mean squared error of the cross-modal layer reconstructions")
