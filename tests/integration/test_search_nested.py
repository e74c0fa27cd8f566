"""A search range can reach into a nested model parameter with a dotted name (``encoder_params.hidden``)."""

from __future__ import annotations

import pytest

from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import SuiteError, load_suite

pytest.importorskip("optuna")

SUITE = """\
name: nested
datasets: [{name: synthetic-factors, params: {n_train: 48, n_valid: 24, n_test: 24, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 2}}]
models:
  - name: supervised
    label: tuned
    params: {encoder: mean, fusion: concat, encoder_params: {dropout: 0.1}}
    search:
      params: {PARAMS}
      sampler: random
      n_trials: 3
      metric: mae
seeds: [0]
train: {epochs: 3, batch_size: 16, threads: 1}
"""


def test_a_dotted_name_searches_one_key_of_a_nested_parameter(write_suite, tmp_path):
    path = write_suite(SUITE.replace("PARAMS", "encoder_params.hidden: {low: 4, high: 9}"))
    run_suite(load_suite(path), out=tmp_path / "out", progress=False)
    with ResultStore(tmp_path / "out") as s:
        encoders = [r["config"]["model"]["params"]["encoder_params"] for r in s.runs()]
    assert len(encoders) >= 2, encoders
    assert all(4 <= e["hidden"] <= 9 for e in encoders), encoders
    assert len({e["hidden"] for e in encoders}) > 1, encoders  # searched, not the default
    assert all(e["dropout"] == 0.1 for e in encoders)  # the suite's other nested values are kept


def test_a_dotted_name_is_checked_like_any_range(write_suite):
    with pytest.raises(SuiteError, match=r"unknown key 'hiden'") as e:
        load_suite(write_suite(SUITE.replace("PARAMS", "encoder_params.hiden: {low: 4, high: 9}")))
    assert "is refused" not in str(e.value)
    with pytest.raises(SuiteError, match=r"low 0 is refused"):
        load_suite(write_suite(SUITE.replace("PARAMS", "encoder_params.hidden: {low: 0, high: 9}")))
