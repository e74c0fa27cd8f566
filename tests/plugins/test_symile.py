"""The symile model: its loss against the authors' ``symile`` package, missing modalities, retrieval, build errors."""

from __future__ import annotations

import pytest
import torch

from mfm_bench.contracts import DatasetSpec, Modality, Task, TensorSplit
from mfm_bench.errors import MfmBenchError
from mfm_bench.plugins.models.symile import clip_loss, retrieval_hits, symile_loss
from mfm_bench.registry import get_registry


def reps(n=6, d=5, m=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1) for _ in range(m)]


@pytest.mark.parametrize("m", [3, 4])  # the reference needs 3+ modalities for all negatives
def test_symile_loss_matches_reference_all_negatives(m):
    ref = pytest.importorskip("symile")
    r, scale = reps(n=5, m=m), torch.tensor(3.0)
    ours = symile_loss(r, scale, "n_squared")
    theirs = ref.Symile(negative_sampling="n_squared")(r, scale)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_symile_loss_matches_reference_shuffled_negatives(m):
    ref = pytest.importorskip("symile")
    r, scale = reps(n=8, m=m, seed=1), torch.tensor(2.0)
    torch.manual_seed(7)
    ours = symile_loss(r, scale, "n")
    torch.manual_seed(7)  # the same permutations, drawn in the same order
    theirs = ref.Symile(negative_sampling="n")(r, scale)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)


def test_symile_equals_clip_for_two_modalities_with_all_negatives():
    r, scale = reps(n=7, m=2, seed=2), torch.tensor(5.0)
    assert torch.allclose(symile_loss(r, scale, "n_squared"), clip_loss(r, scale), atol=1e-5)


def test_symile_loss_prefers_aligned_tuples():
    r = reps(n=16, d=8, m=2, seed=3)
    r.append(torch.nn.functional.normalize(r[0] * r[1], dim=1))  # the third completes each tuple: MIP > 0
    aligned = symile_loss(r, torch.tensor(10.0), "n_squared")
    broken = symile_loss([r[0], r[1], r[2][torch.randperm(16)]], torch.tensor(10.0), "n_squared")
    assert aligned < broken


def test_retrieval_hits_perfect_when_each_tuple_is_distinct():
    base = torch.eye(6)
    r = [base, base, base]
    hits, count = retrieval_hits(r, [torch.ones(6, dtype=torch.bool)] * 3, "symile")
    assert (float(hits), count) == (18.0, 18)
    hits, count = retrieval_hits(
        r, [torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool), torch.ones(6, dtype=torch.bool)], "clip"
    )
    assert count == 12 and float(hits) == 12.0


def spec_of(modalities):
    return DatasetSpec("toy", tuple(modalities), Task("classification", n_classes=3))


def toy_batch(n=10, rows=None):
    g = torch.Generator().manual_seed(0)
    inputs = {
        "img": torch.rand(n, 1, 8, 8, generator=g),
        "sig": torch.randn(n, 12, generator=g),
        "seq": torch.randn(n, 5, 4, generator=g),
    }
    mask = {
        "img": torch.ones(n, 1, dtype=torch.bool),
        "sig": torch.ones(n, 1, dtype=torch.bool),
        "seq": torch.ones(n, 5, dtype=torch.bool),
    }
    mask["sig"][:3] = False
    inputs["sig"][:3] = 0.0
    return TensorSplit(inputs, mask, torch.arange(n) % 3, [str(i) for i in range(n)]).batch(rows or slice(0, n))


MODS = [Modality("img", 1, "image"), Modality("sig", 12, "vector"), Modality("seq", 4, "sequence")]


@pytest.mark.parametrize("objective", ["symile", "clip"])
def test_model_forward_backward_with_a_missing_modality(objective):
    model = get_registry().build(
        "model", "symile", spec_of(MODS), objective=objective, dim=8, encoder_params={"hidden": 8}
    )
    out = model(toy_batch())
    assert out.prediction.shape == (10, 3)
    assert set(out.losses) == {"label", objective}
    hits, count = out.extras["metric_sums"]["retrieval_acc"]
    assert count == 10 + 7 + 10  # the signal is missing in 3 samples: not a candidate there
    sum(out.losses.values()).backward()
    assert model.missing["sig"].grad is not None and model.missing["sig"].grad.abs().sum() > 0
    assert model.missing["img"].grad is None or model.missing["img"].grad.abs().sum() == 0


def test_a_training_batch_of_one_sample_works():
    model = get_registry().build("model", "symile", spec_of(MODS), dim=8, encoder_params={"hidden": 8}).train()
    out = model(toy_batch(rows=slice(5, 6)))
    assert out.prediction.shape == (1, 3) and torch.isfinite(sum(out.losses.values()))


def test_probe_reads_detached_representations():
    model = get_registry().build("model", "symile", spec_of(MODS), dim=8, encoder_params={"hidden": 8})
    out = model(toy_batch())
    out.losses["label"].backward()
    assert all(p.grad is None for p in model.encoders.parameters())
    assert model.probe.weight.grad is not None


def test_one_modality_is_refused_at_build():
    with pytest.raises(MfmBenchError, match="at least 2.*supervised"):
        get_registry().build("model", "symile", spec_of(MODS[:1]))


def test_the_one_modality_advice_names_the_params_the_datasets_take():
    # the advice said `params: modalities`, which synthetic-factors (the dataset of every quickstart) does not take
    import dataclasses
    import re

    reg = get_registry()
    one = reg.build("dataset", "synthetic-factors", dims={"text": 4}, n_train=8, n_valid=4, n_test=4)
    with pytest.raises(MfmBenchError) as info:
        reg.build("model", "symile", one.spec)
    message = str(info.value)
    assert "synthetic-factors: params: {dims: {text: 300, audio: 5}}" in message
    two = reg.build("dataset", "synthetic-factors", dims={"text": 300, "audio": 5}, n_train=8, n_valid=4, n_test=4)
    assert reg.build("model", "symile", two.spec) is not None  # the advice, followed
    named = re.search(r"; ([a-z0-9, -]+) and tensors: params: \{modalities:", message).group(1).split(", ")
    named = named[:-1] + named[-1].split(" and ") + ["tensors"]
    assert len(named) == 8
    for dataset in named:  # every dataset the advice names takes the param it names
        assert "modalities" in {f.name for f in dataclasses.fields(reg.get("dataset", dataset).config)}, dataset
    assert "dims" in {f.name for f in dataclasses.fields(reg.get("dataset", "synthetic-factors").config)}


@pytest.mark.parametrize("model", ["symile", "ladder", "mctn"])
def test_validate_refuses_one_modality_naming_the_dataset_param(write_suite, model):
    from mfm_bench.suite import SuiteError, load_suite

    text = "name: one\ndatasets: [{name: synthetic-factors, params: {dims: {text: 30}}}]\nmodels: [MODEL]\n"
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(text.replace("MODEL", model)))
    e = info.value
    assert e.field == "models[0]" and e.line == 3
    assert f"model {model!r} needs at least 2 modalities, and dataset 'synthetic-factors' has 1 (text)" in e.message
    assert "as its params.dims chooses" in e.message and "give datasets[0].params.dims 2 or more" in e.hint
    two = text.replace("{text: 30}", "{text: 30, audio: 5}").replace("MODEL", model)
    assert load_suite(write_suite(two)).models[0].name == model


def test_image_given_to_an_lstm_is_refused_naming_the_modality():
    with pytest.raises(MfmBenchError, match="'img'.*conv-image"):
        get_registry().build("model", "symile", spec_of(MODS), encoder={"img": "lstm"})
