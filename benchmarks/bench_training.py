"""Training-loop benchmarks: throughput of the trainer's fast path (a TensorSplit batched by indexing) against the
generic DataLoader + collate path, on the same model and data, in one run.

    python -m pytest benchmarks/bench_training.py --benchmark-enable
"""

import pytest
import torch

from mfm_bench.registry import get_registry
from mfm_bench.training import Trainer, TrainConfig

reg = get_registry()


class PlainSplit(torch.utils.data.Dataset):
    """The same samples without the TensorSplit fast path."""

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        return self.split[i]


@pytest.fixture(scope="module")
def data():
    return reg.build("dataset", "synthetic-factors", n_train=1024, n_valid=64, n_test=64)


def one_epoch(ds, train, fusion="concat"):
    torch.manual_seed(0)
    model = reg.build("model", "supervised", ds.spec, encoder="mean", fusion=fusion)
    Trainer(TrainConfig(epochs=1, early_stop=0, device="cpu")).fit(model, train, ds.split("valid"))


@pytest.mark.benchmark(group="trainer-epoch")
def bench_epoch_tensor_split(benchmark, data):
    benchmark.pedantic(one_epoch, args=(data, data.split("train")), rounds=3, iterations=1)


@pytest.mark.benchmark(group="trainer-epoch")
def bench_epoch_dataloader(benchmark, data):
    benchmark.pedantic(one_epoch, args=(data, PlainSplit(data.split("train"))), rounds=3, iterations=1)


@pytest.mark.parametrize("fusion", ["concat", "late"])
@pytest.mark.benchmark(group="supervised-epoch")
def bench_supervised_epoch(benchmark, data, fusion):
    benchmark.pedantic(one_epoch, args=(data, data.split("train"), fusion), rounds=3, iterations=1)


def bench_fast_path_is_faster(data):
    """The target, as a ratio within one run: the TensorSplit path is at least 1.5x the DataLoader path."""
    import time

    def best(train):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            one_epoch(data, train)
            times.append(time.perf_counter() - t0)
        return min(times)

    fast, slow = best(data.split("train")), best(PlainSplit(data.split("train")))
    assert slow / fast >= 1.5, f"TensorSplit epoch {fast:.3f}s vs DataLoader {slow:.3f}s"
