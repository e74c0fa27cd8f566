"""The restricted unpickler and the processed-pickle format (cmu-mosi, cmu-mosei, iemocap)."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

from mfm_bench.data import pkl
from mfm_bench.registry import get_registry


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "nodata"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    p = tmp_path / "mosi_data.pkl"
    p.write_bytes(pickle.dumps({"train": {"text": Evil()}}))
    with pytest.raises(pkl.UnsafePickleError, match=r"refused to load global (posix|os|nt)\.system"):
        pkl.safe_load(p)


@pytest.mark.parametrize("obj", [eval, getattr, type, object])
def test_other_globals_are_refused(tmp_path, obj):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"f": obj}))
    with pytest.raises(pkl.UnsafePickleError, match=str(p)):
        pkl.safe_load(p)


def test_arrays_and_plain_containers_load(tmp_path):
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": [1, 2.5, "x", (3, None)],
        "c": OrderedDict(k={1, 2}),
        "d": np.array(["v1", "v2"], dtype=object),
        "e": np.float64(1.5),
        "f": np.array([b"id"]),
    }
    p = tmp_path / "ok.pkl"
    for protocol in (2, 4, 5):
        p.write_bytes(pickle.dumps(data, protocol=protocol))
        got = pkl.safe_load(p)
        np.testing.assert_array_equal(got["a"], data["a"])
        assert got["b"] == data["b"] and got["c"] == data["c"] and list(got["d"]) == ["v1", "v2"] and got["e"] == 1.5


def test_truncated_pickle_is_a_format_error(tmp_path):
    p = tmp_path / "bad.pkl"
    p.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(pkl.PickleFormatError, match="not a readable pickle"):
        pkl.safe_load(p)


def mult_pickle(path, sizes=(10, 4, 5), steps=(50, 50, 50), labels="sentiment", seed=0, mmsa=False):
    """A pickle laid out like the Multimodal Transformer's (or MMSA's) processed data."""
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in zip(("train", "valid", "test"), sizes):
        d = {}
        for key, t, dim in zip(("text", "audio", "vision"), steps, (300, 74, 35)):
            x = rng.normal(size=(n, t, dim)).astype(np.float32)
            x[:, : t // 5] = 0  # front padding
            d[key] = x
        d["audio"][0, -1, 0] = -np.inf  # as in MulT's CMU-MOSEI audio
        if labels == "sentiment":
            y = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
        else:
            y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, size=(n, 4))]  # (n, 4, 2)
        d["regression_labels" if mmsa else "labels"] = y
        d["id"] = np.array([[f"vid{i}", str(i), str(i + 1)] for i in range(n)])
        data[split] = d
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data, protocol=4))
    return data


def test_cmu_mosi_from_the_aligned_pickle(tmp_path):
    data = mult_pickle(tmp_path / "pkl" / "mosi_data.pkl")
    ds = get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), normalise="none")
    assert (
        ds.format == "pkl" and ds.spec.input_dims == {"text": 300, "audio": 74, "visual": 35} and ds.spec.seq_len == 50
    )
    te = ds.split("test")
    np.testing.assert_allclose(te.target.numpy(), data["test"]["labels"].reshape(-1))
    np.testing.assert_allclose(te.inputs["visual"].numpy(), data["test"]["vision"])
    assert te.ids[2] == "vid2_2_3"
    assert not te.mask["text"][:, :10].any() and te.mask["text"][:, 10:].all()
    tr = ds.split("train")
    assert torch.isfinite(tr.inputs["audio"]).all() and tr.inputs["audio"][0, -1, 0] == 0


def test_unaligned_mmsa_pickle_and_seq_len(tmp_path):
    mult_pickle(tmp_path / "unaligned_50.pkl", steps=(50, 375, 500), mmsa=True)
    ds = get_registry().build("dataset", "cmu-mosi", path=str(tmp_path), aligned=False)
    assert ds.format == "pkl"
    tr = ds.split("train")
    assert tr.inputs["audio"].shape[1] == 375 and tr.inputs["visual"].shape[1] == 500
    short = get_registry().build(
        "dataset", "cmu-mosi", path=str(tmp_path), aligned=False, seq_len=40, modalities=["audio"]
    )
    assert short.split("train").inputs["audio"].shape == (10, 40, 74)


def test_iemocap_one_binary_task_per_emotion(tmp_path):
    data = mult_pickle(tmp_path / "iemocap_data.pkl", labels="emotions")
    for k, emotion in enumerate(("neutral", "happy", "sad", "angry")):
        ds = get_registry().build("dataset", "iemocap", path=str(tmp_path), emotion=emotion)
        assert ds.spec.task.class_names == (f"not {emotion}", emotion)
        want = data["valid"]["labels"][:, k].argmax(-1)
        assert torch.equal(ds.split("valid").target, torch.from_numpy(want))


def test_cmu_mosei_pickle_has_no_emotions(tmp_path):
    mult_pickle(tmp_path / "mosei_senti_data.pkl")
    ds = get_registry().build("dataset", "cmu-mosei", path=str(tmp_path))
    assert ds.format == "pkl" and ds.spec.task.kind == "regression"
    with pytest.raises(ValueError, match="sentiment only; use the csd format"):
        get_registry().build("dataset", "cmu-mosei", path=str(tmp_path), label="emotions")


def test_a_malicious_dataset_pickle_is_refused_by_the_plugin(tmp_path):
    (tmp_path / "iemocap_data.pkl").write_bytes(pickle.dumps({"train": Evil(), "valid": {}, "test": {}}))
    with pytest.raises(pkl.UnsafePickleError, match="iemocap_data.pkl"):
        get_registry().build("dataset", "iemocap", path=str(tmp_path))
