"""The batches a training epoch sees under ``train.batch_order`` and ``train.drop_last``: the default (a new
permutation every epoch, the last partial batch kept) and the original MFM's (one permutation for every epoch, the
last partial batch dropped: pliang279/factorized mfm_mosi.py L387-389, L422-426)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mfm_bench.config import ConfigError, build_config, config_to_dict
from mfm_bench.contracts import Output
from mfm_bench.registry import get_registry
from mfm_bench.runner import make_run, run_id
from mfm_bench.testing import assert_no_host_reads
from mfm_bench.trainconfig import ID_NEUTRAL, identity
from mfm_bench.training import TrainConfig, Trainer, TrainingError


class Recorder(nn.Module):
    """A linear model that records the ids of every training batch, per epoch (an eval pass starts a new one)."""

    def __init__(self, spec) -> None:
        super().__init__()
        self.lin = nn.Linear(spec.input_dims["text"], 1)
        self.epochs: list[list[list[str]]] = []
        self.new_epoch = True

    def forward(self, batch):
        if self.training:
            if self.new_epoch:
                self.epochs.append([])
                self.new_epoch = False
            self.epochs[-1].append(list(batch.ids))
        else:
            self.new_epoch = True
        pred = self.lin(batch.inputs["text"].mean(1)).squeeze(1)
        return Output(pred, {"label": ((pred - batch.target) ** 2).mean()})


def synthetic(n: int = 70):
    return get_registry().build(
        "dataset",
        "synthetic-factors",
        n_train=n,
        n_valid=8,
        n_test=8,
        dims={"text": 6, "audio": 3, "visual": 4},
        seq_len=5,
        min_len=3,
    )


def batches(epochs: int = 3, wrap: bool = False, seed: int = 0, **options) -> tuple[list[list[list[str]]], list[str]]:
    """The ids of each batch of each epoch, training 70 samples in batches of 16; and every training id.
    ``wrap``: the split as a plain Dataset (the DataLoader path) instead of a TensorSplit."""
    ds = synthetic()
    train = ds.split("train")
    ids = [train[i]["id"] for i in range(len(train))]
    if wrap:
        train = torch.utils.data.Subset(train, range(len(train)))
    model = Recorder(ds.spec)
    cfg = TrainConfig(epochs=epochs, batch_size=16, early_stop=0, device="cpu", **options)
    Trainer(cfg).fit(model, train, ds.split("valid"), seed=seed)
    return model.epochs, ids


def flat(epoch: list[list[str]]) -> list[str]:
    return [i for b in epoch for i in b]


@pytest.mark.parametrize("wrap", [False, True])
def test_default_reshuffles_every_epoch_and_keeps_the_last_batch(wrap) -> None:
    epochs, ids = batches(wrap=wrap)
    assert len(epochs) == 3
    for epoch in epochs:
        assert [len(b) for b in epoch] == [16, 16, 16, 16, 6]
        assert sorted(flat(epoch)) == sorted(ids)
    assert flat(epochs[0]) != flat(epochs[1]) != flat(epochs[2])
    assert flat(epochs[0]) != ids  # shuffled, not the dataset's order


@pytest.mark.parametrize("wrap", [False, True])
def test_fixed_order_is_one_permutation_for_every_epoch(wrap) -> None:
    epochs, ids = batches(wrap=wrap, batch_order="fixed")
    for epoch in epochs:
        assert epoch == epochs[0]
        assert [len(b) for b in epoch] == [16, 16, 16, 16, 6]
    assert sorted(flat(epochs[0])) == sorted(ids) and flat(epochs[0]) != ids
    if not wrap:  # the permutation a shuffled first epoch takes, from the same seed
        assert epochs[0] == batches(epochs=1)[0][0]
    assert flat(batches(epochs=1, wrap=wrap, seed=1, batch_order="fixed")[0][0]) != flat(epochs[0])


@pytest.mark.parametrize("wrap", [False, True])
def test_drop_last_leaves_out_the_partial_batch(wrap) -> None:
    epochs, ids = batches(wrap=wrap, drop_last=True)
    for epoch in epochs:
        assert [len(b) for b in epoch] == [16, 16, 16, 16]
        assert len(set(flat(epoch))) == 64 and set(flat(epoch)) <= set(ids)
    assert set(flat(epochs[0])) != set(flat(epochs[1]))  # reshuffled: another 6 samples are left out


@pytest.mark.parametrize("wrap", [False, True])
def test_original_batching_fixed_and_drop_last(wrap) -> None:
    """The original MFM: the same 4 full batches every epoch; the same 6 samples never trained on."""
    epochs, ids = batches(wrap=wrap, batch_order="fixed", drop_last=True)
    assert all(epoch == epochs[0] for epoch in epochs)
    assert [len(b) for b in epochs[0]] == [16, 16, 16, 16]
    if not wrap:
        assert flat(epochs[0]) == flat(batches(epochs=1, batch_order="fixed")[0][0])[:64]


def test_exact_multiple_keeps_every_batch_under_drop_last() -> None:
    ds = synthetic(64)
    model = Recorder(ds.spec)
    cfg = TrainConfig(epochs=1, batch_size=16, early_stop=0, device="cpu", drop_last=True)
    Trainer(cfg).fit(model, ds.split("train"), ds.split("valid"))
    assert [len(b) for b in model.epochs[0]] == [16, 16, 16, 16]


def test_drop_last_with_fewer_samples_than_a_batch_is_an_error() -> None:
    ds = synthetic(10)
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", drop_last=True)
    with pytest.raises(TrainingError, match="10 training samples and batch_size 16 leaves no batch"):
        Trainer(cfg).fit(Recorder(ds.spec), ds.split("train"), ds.split("valid"))


def test_batch_order_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"train\.batch_order: must be one of 'shuffle', 'fixed', got 'sorted'"):
        build_config(TrainConfig, {"batch_order": "sorted"}, where="train")
    with pytest.raises(ConfigError, match=r"batch_order: must be one of 'shuffle', 'fixed', got 'sorted'"):
        TrainConfig(batch_order="sorted")
    with pytest.raises(ConfigError, match=r"train\.drop_last"):
        build_config(TrainConfig, {"drop_last": "yes"}, where="train")


def test_fixed_and_drop_last_read_nothing_on_the_host() -> None:
    ds = synthetic()
    train = ds.split("train")
    sums = assert_no_host_reads(Recorder(ds.spec), train, batch_order="fixed", drop_last=True)
    assert sums.count == 64


def config(**train) -> dict:
    return {
        "dataset": {"name": "synthetic-factors", "params": {}},
        "model": {"name": "supervised", "label": "late", "params": {}},
        "seed": 0,
        "train": config_to_dict(TrainConfig(**train)),
        "evaluate": {"conditions": ["clean"], "probes": [], "bootstrap": 0},
    }


def test_identity_leaves_out_new_fields_at_their_neutral_value() -> None:
    train = config_to_dict(TrainConfig())
    assert set(ID_NEUTRAL) <= set(train)
    assert identity(train) == {k: v for k, v in train.items() if k not in ID_NEUTRAL}
    assert identity(config_to_dict(TrainConfig(batch_order="fixed")))["batch_order"] == "fixed"
    assert identity(config_to_dict(TrainConfig(drop_last=True)))["drop_last"] is True


def test_defaults_keep_the_run_ids_of_before() -> None:
    cfg = config()
    before = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k not in ("device", "threads", *ID_NEUTRAL)}}
    assert make_run("s", "late", "synthetic-factors", cfg).id == run_id(before)


def test_a_folder_made_before_the_options_keeps_its_suite_fingerprint() -> None:
    from mfm_bench.outdir import fingerprint

    cfg = config()
    before = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k not in ID_NEUTRAL}}
    assert fingerprint("s", [cfg])["hash"] == fingerprint("s", [before])["hash"]
    assert fingerprint("s", [config(batch_order="fixed")])["hash"] != fingerprint("s", [before])["hash"]


def test_original_batching_is_another_run() -> None:
    ids = {
        make_run("s", "late", "synthetic-factors", config(**train)).id
        for train in ({}, {"batch_order": "fixed"}, {"drop_last": True}, {"batch_order": "fixed", "drop_last": True})
    }
    assert len(ids) == 4


def test_run_with_the_original_batching(tmp_path, capsys) -> None:
    from mfm_bench.cli import main
    from mfm_bench.results import ResultStore

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: batching\n"
        "datasets:\n"
        "  - name: synthetic-factors\n"
        "    params: {n_train: 40, n_valid: 16, n_test: 16, dims: {text: 6, audio: 3, visual: 4}}\n"
        "models: [{name: supervised, label: late, params: {fusion: late}}]\n"
        "seeds: [0]\n"
        "train: {epochs: 2, batch_size: 16, device: cpu, batch_order: fixed, drop_last: true}\n"
        "evaluate: {conditions: [clean]}\n"
        "report: {formats: [json]}\n"
    )
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    with ResultStore(tmp_path / "out", readonly=True) as store:
        (run,) = store.runs()
    assert run["status"] == "finished", run
    assert run["config"]["train"]["batch_order"] == "fixed" and run["config"]["train"]["drop_last"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text(suite.read_text().replace("batch_order: fixed", "batch_order: sorted"))
    capsys.readouterr()
    assert main(["validate", str(bad)]) != 0
    assert "bad.yaml:7: train.batch_order: must be one of 'shuffle', 'fixed', got 'sorted'" in capsys.readouterr().err
