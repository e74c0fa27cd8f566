"""Built-in models: factory(spec, cfg) -> nn.Module with forward(batch) -> Output."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.models"


@hookimpl
def register_commands(register):
    register("explain", f"{_P}.mfm_explain",
             help="MFM interpretation: gradient of each reconstruction w.r.t. F_y and F_a(i) over time (CSV + heat-map)")


@hookimpl
def register_models(register):
    register("supervised", f"{_P}.supervised:SupervisedModel", config=f"{_P}.configs:SupervisedConfig", help="encoders per modality, a fusion plugin and a task head (the generic baseline)")
    register("mfm", f"{_P}.mfm:MFM", config=f"{_P}.configs:MFMConfig", help="Multimodal Factorization Model (Tsai et al. 2019): discriminative + per-modality generative factors, MMD prior, ablations, surrogate inference")
    register("mctn", f"{_P}.mctn:MCTN", config=f"{_P}.configs:MCTNConfig", help="Multimodal Cyclic Translation Network: source -> targets translation with a cycle loss; test time reads the source only")
    register("misa", f"{_P}.misa:MISA", config=f"{_P}.configs:MISAConfig", help="MISA: modality-invariant and -specific vectors (CMD, orthogonality, reconstruction losses), attention over them")
    register("symile", f"{_P}.symile:Symile", config=f"{_P}.configs:SymileConfig", help="Symile (Saporta et al. 2024): multilinear-inner-product contrastive loss for any number of modalities, or pairwise CLIP; linear probe + zero-shot retrieval")
    register("ladder", f"{_P}.ladder:Ladder", config=f"{_P}.configs:LadderConfig", help="cross-modal ladder networks (Goncalves & Busso 2023): backbones, noisy ladder encoders, decoders rebuilding the other modality's layers through skip connections")


@hookimpl
def register_metrics(register):
    # MFM rebuilds a withheld modality from the factors it still has (extras["metric_sums"], mfm.py)
    register("recon_missing_*", False, section="reconstruction of the missing modality",
             help="MFM: mean squared error of the rebuilt modality at its real steps, under a missing-modality condition")
    # Symile/CLIP: zero-shot retrieval within a batch; ladder: how well each modality rebuilds the other's layers
    register("retrieval_acc", True, help="Symile/CLIP: share of tuples whose missing member is retrieved in the batch")
    register("xmodal_recon_mse", False, help="ladder: mean squared error of the cross-modal layer reconstructions")
