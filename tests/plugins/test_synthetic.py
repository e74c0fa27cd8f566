"""The embedded synthetic-factors dataset: deterministic, shaped as asked, with known factor structure."""

import pytest
import torch

from mfm_bench.config import ConfigError
from mfm_bench.evaluation import ridge_r2
from mfm_bench.registry import get_registry


def build(**params):
    return get_registry().build("dataset", "synthetic-factors", **params)


def test_defaults_are_mosi_shaped():
    ds = build()
    assert ds.spec.input_dims == {"text": 300, "audio": 5, "visual": 20}
    assert [len(ds.split(s)) for s in ("train", "valid", "test")] == [1284, 229, 686]
    tr = ds.split("train")
    assert tr.inputs["text"].shape == (1284, 20, 300) and tr.mask["audio"].dtype == torch.bool
    assert tr.target.min() >= -3 and tr.target.max() <= 3 and ds.spec.task.range == (-3.0, 3.0)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = build(n_train=50, seed=4), build(n_train=50, seed=4), build(n_train=50, seed=5)
    assert torch.equal(a.split("train").inputs["audio"], b.split("train").inputs["audio"])
    assert torch.equal(a.split("test").target, b.split("test").target)
    assert not torch.equal(a.split("train").inputs["audio"], c.split("train").inputs["audio"])


def test_overrides_names_dims_lengths_and_classification():
    ds = build(
        dims={"a": 2, "b": 7, "c": 1, "d": 3},
        seq_len=9,
        min_len=4,
        n_train=30,
        n_valid=10,
        n_test=12,
        task="classification",
        n_classes=3,
    )
    tr = ds.split("train")
    assert ds.spec.modality_names == ["a", "b", "c", "d"] and tr.inputs["b"].shape == (30, 9, 7)
    assert (
        ds.spec.task.kind == "classification" and set(tr.target.tolist()) <= {0, 1, 2} and tr.target.dtype == torch.long
    )
    lengths = tr.mask["a"].sum(1)
    assert lengths.min() >= 4 and lengths.max() <= 9
    # left padding: the real steps are the last ones, padding is zero
    assert tr.mask["a"][:, -1].all() and (tr.inputs["b"][~tr.mask["b"]] == 0).all()
    assert set(tr.factors) == {"shared", "private_a", "private_b", "private_c", "private_d"}


def test_bad_params_are_rejected():
    with pytest.raises(ConfigError, match="1 to 6 modalities"):
        build(dims={f"m{i}": 2 for i in range(7)})
    with pytest.raises(ConfigError, match="min_len"):
        build(seq_len=5, min_len=6)


def test_label_depends_on_shared_factor_only_and_modalities_carry_it():
    ds = build(n_train=600, n_valid=10, n_test=300, dims={"a": 8, "b": 8}, noise=0.1)
    tr, te = ds.split("train"), ds.split("test")
    # the label is a function of the shared factor: a probe on (s, s0*s1) explains most of it
    feats = lambda s: torch.cat([s, (s[:, 0] * s[:, 1]).unsqueeze(1)], 1)  # noqa: E731
    assert (
        ridge_r2(feats(tr.factors["shared"]), tr.target[:, None], feats(te.factors["shared"]), te.target[:, None]) > 0.8
    )
    # the private factor of a says nothing about the label
    assert ridge_r2(tr.factors["private_a"], tr.target[:, None], te.factors["private_a"], te.target[:, None]) < 0.05
    # modality a's mean features carry both the shared and a's private factor, but not b's private factor
    xa = lambda s: s.inputs["a"].sum(1) / s.mask["a"].sum(1, keepdim=True)  # noqa: E731
    assert ridge_r2(xa(tr), tr.factors["shared"], xa(te), te.factors["shared"]) > 0.3
    assert ridge_r2(xa(tr), tr.factors["private_a"], xa(te), te.factors["private_a"]) > 0.3
    assert ridge_r2(xa(tr), tr.factors["private_b"], xa(te), te.factors["private_b"]) < 0.05
