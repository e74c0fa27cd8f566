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
