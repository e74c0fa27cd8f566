"""``supervised`` with ``drop``: a model that never sees the dropped modalities (the original's basic_missing)."""

import pytest
import torch

from mfm_bench.registry import get_registry


def test_dropped_modality_never_reaches_the_model():
    reg = get_registry()
    ds = reg.build(
        "dataset",
        "synthetic-factors",
        n_train=16,
        n_valid=8,
        n_test=8,
        dims={"text": 6, "audio": 3, "visual": 4},
        seq_len=5,
        min_len=3,
    )
    torch.manual_seed(0)
    model = reg.build("model", "supervised", ds.spec, fusion="mfn", drop=["audio"]).eval()
    batch = ds.split("test").batch(slice(None))
    changed = batch.replace(inputs={**batch.inputs, "audio": torch.randn_like(batch.inputs["audio"]) * 10})
    with torch.no_grad():
        assert torch.equal(model(batch).prediction, model(changed).prediction)
        text = batch.replace(inputs={**batch.inputs, "text": batch.inputs["text"] + 1.0})
        assert not torch.equal(model(batch).prediction, model(text).prediction)
    with pytest.raises(ValueError, match="drop names"):
        reg.build("model", "supervised", ds.spec, drop=["sound"])
