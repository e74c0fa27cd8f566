"""The errors of a search block's ranges name what is wrong, not just the expected shape."""

from __future__ import annotations

import pytest

from mfm_bench.suite import SuiteError, load_suite

SUITE = """\
name: search
datasets: [{name: synthetic-factors, params: {n_train: 48, n_valid: 24, n_test: 24, dims: {text: 5, audio: 3}}}]
models:
  - name: supervised
    label: tuned
    params: {encoder: mean, fusion: concat}
    search:
      params: {PARAM}
seeds: [0]
train: {epochs: 1}
"""


def error(write_suite, param: str) -> str:
    with pytest.raises(SuiteError) as e:
        load_suite(write_suite(SUITE.replace("PARAM", param)))
    return str(e.value)


def test_an_unknown_parameter_is_named_without_blaming_an_end_of_its_range(write_suite):
    msg = error(write_suite, "head_hiddn: {low: 4, high: 16}")
    assert "unknown key 'head_hiddn'" in msg and "did you mean 'head_hidden'" in msg
    assert "is refused" not in msg  # the key is unknown whatever its range: "low 4 is refused" misleads
    msg = error(write_suite, "train.lrr: {low: 1.0e-4, high: 1.0e-1}")
    assert "unknown key" in msg and "is refused" not in msg


def test_a_range_error_names_the_fault(write_suite):
    assert "low 16 must be below high 4" in error(write_suite, "head_hidden: {low: 16, high: 4}")
    msg = error(write_suite, "train.lr: {low: 0, high: 0.1, log: true}")
    assert "log: true needs low > 0, got low 0" in msg
    msg = error(write_suite, "train.lr: {low: 1.0e-4, high: 0.1, step: 0.01}")
    assert "unknown key 'step'" in msg and "low, high, log" in msg
    assert "choices: [] is empty" in error(write_suite, "fusion: {choices: []}")
    assert "high is missing" in error(write_suite, "train.lr: {low: 1.0e-4}")
    # the shape is still taught
    assert "{low: NUMBER, high: NUMBER, log: BOOL}" in error(write_suite, "train.lr: 0.1")


def test_a_value_out_of_the_configs_bounds_still_names_its_end(write_suite):
    assert "low -1 is refused" in error(write_suite, "head_hidden: {low: -1, high: 4}")
