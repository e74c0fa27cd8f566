"""SIGTERM during a suite: the current run is marked interrupted, the caller sees KeyboardInterrupt, and the
previous SIGTERM handler is back afterwards."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mfm_bench import runner
from mfm_bench.results import ResultStore
from mfm_bench.suite import load_suite

SUITE = """\
name: term
datasets:
  - {name: synthetic-factors, params: {n_train: 32, n_valid: 16, n_test: 16, dims: {text: 4, audio: 3}, seq_len: 4,
                                       min_len: 2}}
models: [{name: dummy, label: a}, {name: dummy, label: b}]
train: {epochs: 1, batch_size: 16}
"""


def test_sigterm_interrupts_the_current_run_and_restores_the_handler(write_suite, tmp_path, dummy, monkeypatch):
    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread long before
        raise AssertionError("SIGTERM was not turned into an interruption")

    monkeypatch.setattr(runner, "_train_and_evaluate", terminated)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(load_suite(write_suite(SUITE)), tmp_path / "o", progress=False)
    assert signal.getsignal(signal.SIGTERM) is before
    with ResultStore(tmp_path / "o") as store:
        assert [(r["label"], r["status"], r["error"]) for r in store.runs()] == [("a", "interrupted", "interrupted")]


def test_an_interruption_right_after_a_runs_row_is_written_marks_it_interrupted(write_suite, tmp_path, dummy):
    """Ctrl-C can land between the commit of a run's "running" row and the next statement: the row is marked
    interrupted all the same, and a finished row that an --overwrite had not replaced yet stays finished."""
    suite = load_suite(write_suite(SUITE))
    out = tmp_path / "o"
    assert runner.run_suite(suite, out, progress=False)["finished"] == 2
    real = ResultStore.start
    started = []

    def start_then_interrupt(self, run, environment):
        real(self, run, environment)
        started.append(run["label"])
        raise KeyboardInterrupt  # just after the commit

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ResultStore, "start", start_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            runner.run_suite(suite, out, progress=False, overwrite=True)
    with ResultStore(out) as store:
        status = {r["label"]: r["status"] for r in store.runs()}
    assert started == ["a"] and status == {"a": "interrupted", "b": "finished"}
