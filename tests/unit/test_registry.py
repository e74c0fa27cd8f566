"""The registry is generic: nested plugins are marked in the config, callers pass context, no kind is special."""

from dataclasses import dataclass

import pytest

from mfm_bench import hookimpl
from mfm_bench.config import ConfigError, nested_plugins, option, plugin
from mfm_bench.plugins.encoders.rnn import RNNConfig
from mfm_bench.registry import get_registry
from mfm_bench.runner import expand
from mfm_bench.suite import load_suite
from mfm_bench.testing import temporary_plugin

SUITE = """\
name: nested
datasets: [{name: synthetic-factors, params: {n_train: 16, n_valid: 8, n_test: 8}}]
models:
  - {name: supervised, params: {encoder: {text: gru, default: lstm}, encoder_params: {layers: 2}}}
"""


@dataclass
class WiderGRUConfig(RNNConfig):
    hidden: int = option(48, "a changed default")


def test_mapping_of_encoders_keeps_each_encoders_defaults_in_the_run_id(write_suite, monkeypatch):
    suite = load_suite(write_suite(SUITE))
    params = suite.models[0].params["encoder_params"]
    assert params == {
        "gru": {"hidden": 32, "layers": 2, "dropout": 0.0, "bidirectional": False},
        "lstm": {"hidden": 32, "layers": 2, "dropout": 0.0, "bidirectional": False},
    }
    before = [r.id for r in expand(suite)]
    monkeypatch.setattr(get_registry().get("encoder", "gru"), "config_ref", WiderGRUConfig)
    changed = load_suite(write_suite(SUITE))
    assert changed.models[0].params["encoder_params"]["gru"]["hidden"] == 48
    assert changed.models[0].params["encoder_params"]["lstm"]["hidden"] == 32
    assert [r.id for r in expand(changed)] != before


def test_resolved_params_build_the_same_model_and_resolve_again_unchanged():
    reg = get_registry()
    raw = {"encoder": {"text": "gru", "default": "mean"}, "encoder_params": {"hidden": 5}}
    resolved = reg.resolve("model", "supervised", raw)
    assert resolved["encoder_params"]["mean"] == {"hidden": 5, "dropout": 0.0}
    assert reg.resolve("model", "supervised", resolved) == resolved
    ds = reg.build("dataset", "synthetic-factors", n_train=8, n_valid=4, n_test=4, dims={"text": 3, "audio": 2})
    model = reg.build("model", "supervised", ds.spec, **resolved)
    assert type(model.encoders["text"]).__name__ == "GRUEncoder" and model.encoders["text"].output_dim == 5
    assert type(model.encoders["audio"]).__name__ == "MeanEncoder" and model.encoders["audio"].output_dim == 5


def test_a_bad_nested_param_names_the_plugin_under_a_mapping():
    with pytest.raises(ConfigError) as info:
        get_registry().resolve("model", "supervised", {"encoder": {"default": "mean"}, "encoder_params": {"layers": 2}})
    assert info.value.field == "params.encoder_params.layers" and "unknown key" in info.value.message


@dataclass
class TowerConfig:
    tower: str | dict = plugin("encoder", "mean", "encoder of every modality")
    tower_params: dict = option({}, "params of the encoder")


class _TowerPlugin:
    @hookimpl
    def register_models(self, register):
        register("tower", lambda spec, cfg: cfg, config=TowerConfig)


def test_a_third_party_model_nests_an_encoder_under_any_field_name():
    assert nested_plugins(TowerConfig) == [("tower", "encoder", "tower_params")]
    with temporary_plugin(_TowerPlugin(), "tower-plugin") as reg:
        assert reg.resolve("model", "tower", {})["tower_params"] == {"hidden": 32, "dropout": 0.0}
        with pytest.raises(ConfigError, match="did you mean 'mean'") as info:
            reg.resolve("model", "tower", {"tower": "meen"})
        assert info.value.field == "params.tower"


def test_build_passes_the_callers_context_to_the_factory():
    reg = get_registry()
    late = reg.build("fusion", "late", {"a": 3, "b": 4}, context={"out_dim": 2}, hidden=8)
    assert late.output_dim == 2 and late.predicts
    concat = reg.build("fusion", "concat", {"a": 3, "b": 4}, hidden=8)
    assert concat.output_dim == 8
    with pytest.raises(TypeError, match="out_dim"):
        reg.build("fusion", "late", {"a": 3, "b": 4})
