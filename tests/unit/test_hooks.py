"""register_fusions and register_models, each through a throwaway plugin used by a real suite run."""

from __future__ import annotations

import torch
from torch import nn

from mfm_bench import hookimpl
from mfm_bench.registry import get_registry
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite
from mfm_bench.testing import temporary_plugin

DATA = (
    "{name: synthetic-factors, params: {n_train: 32, n_valid: 16, n_test: 16, dims: {text: 4, audio: 3}, "
    "seq_len: 4, min_len: 2}}"
)


class SumFusion(nn.Module):
    """Sum of the pooled encodings (all of one width); counts its calls so the test sees it was used."""

    input_kind = "pooled"
    calls = 0

    def __init__(self, input_dims):
        super().__init__()
        assert len(set(input_dims.values())) == 1, input_dims
        self.output_dim = next(iter(input_dims.values()))

    def forward(self, inputs, mask):
        SumFusion.calls += 1
        return torch.stack(list(inputs.values())).sum(0)


class MeanModel(nn.Module):
    """Mean of the first modality's steps -> the task's head; the task loss only."""

    def __init__(self, spec):
        super().__init__()
        from mfm_bench.nn import Head, task_loss

        self.first, self.spec, self.loss = spec.modality_names[0], spec, task_loss
        self.lin = Head(spec.task, spec.input_dims[self.first], 4)

    def forward(self, batch):
        from mfm_bench.contracts import Output

        pred = self.lin(batch.inputs[self.first].mean(1))
        return Output(pred, {"label": self.loss(self.spec.task, pred, batch.target)})


class ToyPlugin:
    @hookimpl
    def register_fusions(self, register):
        register("toy-sum", SumFusion, help="sum of pooled encodings")

    @hookimpl
    def register_models(self, register):
        register("toy-mean", MeanModel, help="mean of the first modality")


def test_registered_fusion_and_model_run_in_a_suite(write_suite, tmp_path):
    suite_text = f"""\
name: hooks
datasets: [{DATA}]
models:
  - {{name: supervised, label: sum, params: {{encoder: mean, fusion: toy-sum}}}}
  - {{name: toy-mean}}
train: {{epochs: 1, batch_size: 16}}
"""
    SumFusion.calls = 0
    with temporary_plugin(ToyPlugin(), "mfm-bench-toy-hooks", version="1.2"):
        reg = get_registry()
        assert "toy-sum" in reg.names("fusion") and "toy-mean" in reg.names("model")
        assert (reg.get("model", "toy-mean").package, reg.get("model", "toy-mean").version) == (
            "mfm-bench-toy-hooks",
            "1.2",
        )
        counts = run_suite(load_suite(write_suite(suite_text)), tmp_path / "o", progress=False)
    assert counts == {"finished": 2, "failed": 0, "skipped": 0}
    assert SumFusion.calls > 0
    with ResultStore(tmp_path / "o") as store:
        assert sorted(r["label"] for r in store.runs("finished")) == ["sum", "toy-mean"]
    assert "toy-sum" not in get_registry().names("fusion")  # unregistered after the block
