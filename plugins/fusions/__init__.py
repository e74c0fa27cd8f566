"""Built-in fusions: dict of encoded (or raw) modalities + masks -> fused [B, H]."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.fusions"


@hookimpl
def register_fusions(register):
    register("concat", f"{_P}.concat:ConcatFusion", config=f"{_P}.concat:ConcatConfig", help="early fusion: concatenate pooled encodings, then an MLP")
    register("late", f"{_P}.late:LateFusion", config=f"{_P}.late:LateConfig", help="late fusion: one head per modality, predictions averaged (or learned-weighted) over present modalities")
    register("ef_lstm", f"{_P}.ef_lstm:EFLSTMFusion", config=f"{_P}.ef_lstm:EFLSTMConfig", help="EF-LSTM: raw modalities concatenated at every step, one LSTM (aligned data)")
