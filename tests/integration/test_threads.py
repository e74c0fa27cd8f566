"""The thread default: ``threads: 0`` picks a count that does not oversubscribe a shared machine."""

import os

import pytest
import torch
from torch import nn

from mfm_bench.registry import get_registry
from mfm_bench.training import SINGLE_THREAD_PARAMS, TrainConfig, Trainer, auto_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_small_model_trains_on_one_thread_by_default(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    reg = get_registry()
    ds = reg.build("dataset", "synthetic-factors", n_train=64, n_valid=16, n_test=16)
    model = reg.build("model", "supervised", ds.spec, encoder="mean", fusion="concat")
    torch.set_num_threads(2)  # what torch picks on a two-core machine
    Trainer(TrainConfig(epochs=1, early_stop=0, device="cpu")).fit(model, ds.split("train"), ds.split("valid"))
    assert torch.get_num_threads() == 1


def test_auto_threads_rules(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    small, big = nn.Linear(10, 10), nn.Linear(3000, 2000)
    assert sum(p.numel() for p in big.parameters()) >= SINGLE_THREAD_PARAMS
    assert auto_threads(small) == 1
    assert auto_threads(big) == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert auto_threads(small) == 3


def test_explicit_threads_win_and_negative_is_refused(monkeypatch, restore_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with pytest.raises(ValueError, match="threads"):
        TrainConfig(threads=-4)
    reg = get_registry()
    ds = reg.build("dataset", "synthetic-factors", n_train=32, n_valid=16, n_test=16)
    model = reg.build("model", "supervised", ds.spec, encoder="mean", fusion="concat")
    Trainer(TrainConfig(epochs=1, early_stop=0, device="cpu", threads=2)).fit(
        model, ds.split("train"), ds.split("valid")
    )
    assert torch.get_num_threads() == 2
