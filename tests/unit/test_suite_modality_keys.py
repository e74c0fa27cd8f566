"""Per-modality settings (MFM's za, fa, factor_dropout, lambda_x, decoder) are keyed by modality names the suite's
datasets have: a misspelt key silently took the 'default' value, so validate refuses it with the names."""

import pytest

from mfm_bench.suite import SuiteError, load_suite

SUITE = """\
name: keys
datasets: [{name: synthetic-factors, params: {dims: {text: 30, audio: 5}, n_train: 40, n_valid: 20, n_test: 20}}]
models:
  - {name: mfm, params: PARAMS}
"""


@pytest.mark.parametrize(
    ("params", "field", "key", "close"),
    [
        ("{za: {txet: 8, default: 4}}", "za", "txet", "text"),
        ("{fa: {audoi: 8, default: 4}}", "fa", "audoi", "audio"),
        ("{lambda_x: {text: 1.0, visual: 0.5, default: 0.1}}", "lambda_x", "visual", None),
        ("{decoder: {Text: lstm, default: lstm}}", "decoder", "Text", "text"),
        ("{factor_dropout: {zy: 0.1, defualt: 0.2}}", "factor_dropout", "defualt", "default"),
    ],
)
def test_a_key_that_names_no_modality_is_refused_with_the_names(write_suite, params, field, key, close):
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(SUITE.replace("PARAMS", params)))
    e = info.value
    assert e.field == f"models[0].params.{field}.{key}" and e.line == 4
    assert f"{field} names modality {key!r}, which no dataset of the suite has" in e.message
    assert "dataset 'synthetic-factors' has text, audio" in e.message
    assert (f"did you mean {close!r}?" in e.hint) == (close is not None)
    assert "available: " in e.hint and "text" in e.hint


def test_the_field_s_own_keys_and_a_preset_s_modalities_are_accepted(write_suite):
    # zy and shared are keys of factor_dropout; the preset fills mappings keyed text/audio/visual, which the
    # suite did not write: a dataset without 'visual' must still validate
    params = (
        "{preset: mmsa, za: {shared: 8, text: 16, default: 4}, factor_dropout: {zy: 0.1, shared: 0.2, default: 0.3}}"
    )
    suite = load_suite(write_suite(SUITE.replace("PARAMS", params)))
    assert suite.models[0].params["za"] == {"shared": 8, "text": 16, "default": 4}
    assert "visual" in suite.models[0].params["lambda_x"]  # from the preset, not refused


def test_a_key_one_dataset_has_is_accepted_when_another_lacks_it(write_suite):
    text = SUITE.replace("PARAMS", "{lambda_x: {visual: 0.5, default: 1.0}}").replace(
        "datasets: [{name: synthetic-factors, params",
        "datasets: [{name: synthetic-factors, label: three}, {name: synthetic-factors, label: two, params",
    )
    assert load_suite(write_suite(text)).models[0].params["lambda_x"] == {"visual": 0.5, "default": 1.0}


def test_a_nested_plugin_s_per_modality_param_is_checked_too(write_suite):
    # a fusion whose config declares a per-modality field: its key in fusion_params is checked the same way
    from dataclasses import dataclass

    from mfm_bench import hookimpl
    from mfm_bench.config import option
    from mfm_bench.testing import temporary_plugin

    @dataclass
    class WeightedConfig:
        weight: float | dict = option(1.0, "weight per modality", modality_keys=("default",))

    class Plugin:
        @hookimpl
        def register_fusions(self, register):
            register("weighted-under-test", "mfm_bench.plugins.fusions.concat:ConcatFusion", config=WeightedConfig)

    text = SUITE.replace("mfm, params: PARAMS", "supervised, params: {fusion: weighted-under-test, fusion_params: W}")
    with temporary_plugin(Plugin(), "weighted-under-test"):
        ok = load_suite(write_suite(text.replace("W", "{weight: {audio: 2.0, default: 1.0}}")))
        assert ok.models[0].params["fusion_params"] == {"weight": {"audio": 2.0, "default": 1.0}}
        with pytest.raises(SuiteError) as info:
            load_suite(write_suite(text.replace("W", "{weight: {adio: 2.0, default: 1.0}}")))
    assert info.value.field == "models[0].params.fusion_params.weight.adio"
    assert "did you mean 'audio'?" in info.value.hint


@pytest.mark.parametrize("field", ["lambda_x", "decoder"])
def test_a_mapping_that_leaves_a_modality_without_a_value_is_refused(write_suite, field):
    # every modality reads lambda_x and decoder: without 'default' the model's build failed every run
    value = {"lambda_x": "{text: 1.0}", "decoder": "{text: lstm}"}[field]
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(SUITE.replace("PARAMS", f"{{{field}: {value}}}")))
    e = info.value
    assert e.field == f"models[0].params.{field}" and e.line == 4
    assert (
        f"{field} gives no value for modality 'audio' of dataset 'synthetic-factors' and has no 'default'" in e.message
    )
    full = value.replace("}", ", audio: " + ("0.5}" if field == "lambda_x" else "lstm}"))
    assert load_suite(write_suite(SUITE.replace("PARAMS", f"{{{field}: {full}}}"))).models[0].params[field]


def test_mult_s_dropouts_per_source_modality_name_modalities_the_dataset_has(write_suite):
    # attn_dropout: {txt: 0.2} silently left every source on the default 0.0
    text = (
        "name: keys\n"
        "datasets: [{name: synthetic-factors, params: {dims: {text: 6, audio: 3}}}]\n"
        "models: [{name: supervised, params: {fusion: mult,\n"
        "  fusion_params: {attn_dropout: {txt: 0.2, default: 0.0}}}}]\n"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(text))
    e = info.value
    assert e.field == "models[0].params.fusion_params.attn_dropout.txt"
    assert "attn_dropout names modality 'txt', which no dataset of the suite has" in e.message
