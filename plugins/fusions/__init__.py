"""Built-in fusions: dict of encoded (or raw) modalities + masks -> fused [B, H]."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.fusions"


@hookimpl
def register_fusions(register):
    register(
        "concat",
        f"{_P}.concat:ConcatFusion",
        config=f"{_P}.configs:ConcatConfig",
        help="early fusion: concatenate pooled encodings, then an MLP",
    )
    register(
        "late",
        f"{_P}.late:LateFusion",
        config=f"{_P}.configs:LateConfig",
        help="late fusion: one head per modality, predictions averaged (or learned-weighted) over present modalities",
    )
    register(
        "mfn",
        f"{_P}.mfn:MFNFusion",
        config=f"{_P}.configs:MFNConfig",
        help=(
            "Memory Fusion Network (Zadeh et al. 2018): per-modality LSTM cells, delta-memory attention, "
            "gated multi-view memory"
        ),
    )
    register(
        "ef_lstm",
        f"{_P}.ef_lstm:EFLSTMFusion",
        config=f"{_P}.configs:EFLSTMConfig",
        help="EF-LSTM: raw modalities concatenated at every step, one LSTM (aligned data)",
    )
    register(
        "tfn",
        f"{_P}.tfn:TFNFusion",
        config=f"{_P}.configs:TFNConfig",
        help="Tensor Fusion Network: outer product of the modality vectors each padded with a 1, then an MLP",
    )
    register(
        "lmf",
        f"{_P}.lmf:LMFFusion",
        config=f"{_P}.configs:LMFConfig",
        help="Low-rank Multimodal Fusion: TFN's product with rank-r modality factors, no tensor built",
    )
    register(
        "mult",
        f"{_P}.mult:MulTFusion",
        config=f"{_P}.configs:MulTConfig",
        help="Multimodal Transformer: crossmodal attention between every ordered pair, unaligned sequences",
    )
