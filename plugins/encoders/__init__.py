"""Built-in encoders: (x [B, T, D], mask [B, T]) -> (pooled [B, H], sequence [B, T, H])."""

from mfm_bench import hookimpl

_P = "mfm_bench.plugins.encoders"


@hookimpl
def register_encoders(register):
    register(
        "lstm",
        f"{_P}.rnn:LSTMEncoder",
        config=f"{_P}.configs:RNNConfig",
        help="LSTM; pooled = hidden state at the last real step (a vector modality: one step)",
    )
    register(
        "gru",
        f"{_P}.rnn:GRUEncoder",
        config=f"{_P}.configs:RNNConfig",
        help="GRU; pooled = hidden state at the last real step (a vector modality: one step)",
    )
    register(
        "mean", f"{_P}.mean:MeanEncoder", config=f"{_P}.configs:MeanConfig", help="masked mean over time, then an MLP"
    )
    register(
        "conv-image",
        f"{_P}.conv:ImageConvEncoder",
        config=f"{_P}.configs:ImageConvConfig",
        help="small 2-D conv net for image modalities [C, H, W]; pooled = global average",
    )
    register(
        "conv-signal",
        f"{_P}.conv:SignalConvEncoder",
        config=f"{_P}.configs:SignalConvConfig",
        help="small 1-D conv net for signals: a vector [D] as one channel, a sequence [T, D] as D channels",
    )
