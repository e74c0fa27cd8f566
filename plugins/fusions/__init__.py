"""Built-in fusions: dict of encoded (or raw) modalities + masks -> fused [B, H]."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.fusions"


@hookimpl
def register_fusions(register):
    register("concat", f"{_P}.concat:ConcatFusion", config=f"{_P}.concat:ConcatConfig", help="early fusion: concatenate pooled encodings, then an MLP")
    register("late", f"{_P}.late:LateFusion", config=f"{_P}.late:LateConfig", help="late fusion: one head per modality, predictions averaged over present modalities")
    register("mfn", f"{_P}.mfn:MFNFusion", config=f"{_P}.mfn:MFNConfig", help="Memory Fusion Network (Zadeh et al. 2018): per-modality LSTM cells, delta-memory attention, gated multi-view memory")
