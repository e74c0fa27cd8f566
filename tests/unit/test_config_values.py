"""Typed config values: a boolean written in quotes is a string, and the error says how to write it."""

import re

import pytest

from mfm_bench.suite import SuiteError, load_suite

SUITE = """\
name: quoted
datasets: [{name: synthetic-factors, params: {n_train: 40, n_valid: 20, n_test: 20}}]
models: [{name: supervised, params: {fusion: concat}}]
train: {epochs: 1, compile: COMPILE}
"""


@pytest.mark.parametrize(("written", "word"), [('"true"', "true"), ("'off'", "false"), ('"yes"', "true")])
def test_a_quoted_boolean_is_refused_with_the_unquoted_spelling(write_suite, written, word):
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(SUITE.replace("COMPILE", written)))
    e = info.value
    assert e.field == "train.compile" and e.line == 4
    assert f"write {word} without quotes" in e.hint


def test_an_unquoted_boolean_and_an_unrelated_string_get_no_such_hint(write_suite):
    assert load_suite(write_suite(SUITE.replace("COMPILE", "true"))).train["compile"] is True
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(SUITE.replace("COMPILE", "maybe")))
    assert "without quotes" not in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "says"),
    [("1/0", "N, the number of shards, must be 1 or more"), ("3/2", "K must be between 1 and N (2)"), ("a", "K/N")],
)
def test_a_bad_shard_says_which_part_is_wrong(text, says):
    from mfm_bench.runner import parse_shard

    with pytest.raises(ValueError, match=re.escape(says)):
        parse_shard(text)


def test_a_bad_number_option_names_the_flag_once(capsys):
    from mfm_bench.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser(["run"]).parse_args(["run", "s.yaml", "--jobs", "0"])
    err = capsys.readouterr().err
    assert "argument --jobs: takes a positive number of worker processes, got '0'" in err
    assert "--jobs: --jobs" not in err


def test_an_option_of_a_nested_plugin_points_to_its_params(write_suite):
    text = SUITE.replace("params: {fusion: concat}", "params: {fusion: mfn, impl: reference}").replace(
        "compile: COMPILE", "compile: false"
    )
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(text))
    assert "unknown key 'impl'" in info.value.message
    assert "goes in its params: encoder_params or fusion_params: {impl: ...}" in info.value.hint


SIZES = """\
name: sizes
datasets: [{name: synthetic-factors, params: {n_train: 40, n_valid: 20, n_test: 20}}]
models: [MODEL]
"""


@pytest.mark.parametrize(
    ("model", "field", "says"),
    [
        ("{name: supervised, params: {encoder_params: {hidden: 0}}}", "encoder_params.hidden", "at least 1, got 0"),
        (
            "{name: supervised, params: {encoder: gru, encoder_params: {layers: 0}}}",
            "encoder_params.layers",
            "at least 1",
        ),
        (
            "{name: supervised, params: {encoder: mean, encoder_params: {dropout: 1.5}}}",
            "encoder_params.dropout",
            "between 0 and 1",
        ),
        ("{name: supervised, params: {head_hidden: -1}}", "head_hidden", "at least 0, got -1"),
        ("{name: misa, params: {heads: 0}}", "heads", "at least 1, got 0"),
        ("{name: mctn, params: {hidden: 0}}", "hidden", "at least 1, got 0"),
        ("{name: ladder, params: {aux_weight: -1.0}}", "aux_weight", "at least 0, got -1.0"),
        ("{name: mfm, params: {za: {text: 0, default: 4}}}", "za.text", "at least 1, got 0"),
        ("{name: mfm, params: {factor_dropout: {zy: 2.0, default: 0.1}}}", "factor_dropout.zy", "between 0 and 1"),
        ("{name: mfm, params: {fusion_params: {memory: 0}}}", "fusion_params.memory", "at least 1, got 0"),
        ("{name: mfm, params: {fusion_params: {hidden: {text: 0}}}}", "fusion_params.hidden.text", "at least 1"),
        (
            "{name: supervised, params: {fusion: concat, fusion_params: {dropout: 1.5}}}",
            "fusion_params.dropout",
            "between 0 and 1",
        ),
        ("{name: supervised, params: {fusion: lmf, fusion_params: {rank: 0}}}", "fusion_params.rank", "at least 1"),
        (
            "{name: supervised, params: {fusion: mult, fusion_params: {attn_dropout: {text: -0.1}}}}",
            "fusion_params.attn_dropout.text",
            "between 0 and 1",
        ),
    ],
)
def test_a_size_or_rate_out_of_range_is_refused_naming_the_field(write_suite, model, field, says):
    # encoder_params: {hidden: 0} passed validate and failed every run when its empty layer was built; misa's
    # heads: 0 was a ZeroDivisionError traceback inside the config
    with pytest.raises(SuiteError) as info:
        load_suite(write_suite(SIZES.replace("MODEL", model)))
    e = info.value
    assert e.field == f"models[0].params.{field}" and e.line == 3
    assert says in e.message
    assert "use " in e.hint  # the accepted range, after the field's help


def test_the_bounds_accept_their_edges_and_leave_the_run_config_as_it_was(write_suite):
    text = SIZES.replace(
        "MODEL",
        "{name: supervised, params: {encoder_params: {hidden: 1, dropout: 0.0}, head_hidden: 0, head_dropout: 1.0}}",
    )
    suite = load_suite(write_suite(text))
    params = suite.models[0].params
    assert params["encoder_params"]["hidden"] == 1 and params["head_hidden"] == 0 and params["head_dropout"] == 1.0
    assert sorted(params["encoder_params"]) == ["bidirectional", "dropout", "hidden", "layers"]  # no bound leaks in


def test_plugins_params_shows_each_bound_after_the_help():
    from mfm_bench.config import describe_config
    from mfm_bench.registry import get_registry

    rows = {r[0]: r[3] for r in describe_config(get_registry().get("encoder", "gru").config)}
    assert rows["hidden"] == "hidden size per direction [1 or more]"
    assert rows["dropout"].endswith("[0 to 1]") and "[" not in rows["bidirectional"]


def test_a_config_check_that_divides_by_a_zero_param_is_a_config_error_naming_it():
    from dataclasses import dataclass

    from mfm_bench.config import ConfigError, build_config, option

    @dataclass
    class Split:
        width: int = option(32, "width")
        heads: int = option(4, "heads")

        def __post_init__(self):
            if self.width % self.heads:
                raise ValueError("heads must divide width")

    with pytest.raises(ConfigError) as info:
        build_config(Split, {"heads": 0}, where="models[0].params")
    assert info.value.field == "models[0].params" and "ZeroDivisionError" in info.value.message
    assert info.value.hint == "heads is 0: give it a positive value"
