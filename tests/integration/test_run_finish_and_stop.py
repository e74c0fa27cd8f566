"""`mfm-bench run` at the edges of a suite: a --resume with nothing left to run, a --limit that cuts nothing,
and a suite stopped by SIGTERM or Ctrl-C in a real process (exit status, leaderboard of the finished runs)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mfm_bench import runner
from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.outdir import MixedSettingsError
from mfm_bench.results import ResultStore
from mfm_bench.suite import load_suite

DATA = "{n_train: 48, n_valid: 16, n_test: 24, dims: {text: 4, audio: 3}, seq_len: 4, min_len: 2}"
SUITE = f"""\
name: edges
datasets: [{{name: synthetic-factors, params: {DATA}}}]
models:
  - {{name: supervised, label: concat, params: {{encoder: mean, fusion: concat}}}}
  - {{name: supervised, label: late, params: {{encoder: mean, fusion: late}}}}
train: {{epochs: 2, batch_size: 16, lr: 0.01}}
evaluate: {{conditions: [clean]}}
"""


def clean_mae(out):
    with ResultStore(out, readonly=True) as store:
        return {
            r["label"]: next(
                m["value"] for m in store.metrics(r["id"]) if (m["condition"], m["metric"]) == ("clean", "mae")
            )
            for r in store.runs("finished")
        }


def test_a_resume_with_nothing_left_runs_nothing_whatever_the_execution_options(write_suite, tmp_path, monkeypatch):
    suite, out = load_suite(write_suite(SUITE)), tmp_path / "o"
    assert runner.run_suite(suite, out, progress=False, log=lambda s: None)["finished"] == 2
    before = clean_mae(out)

    def no_training(*args, **kwargs):
        raise AssertionError("a --resume with nothing left checked data or started workers")

    # nothing trains: the data is not checked and no worker starts, and settings that differ from the recorded
    # ones (threads, --deterministic, --jobs) mix nothing, so they are not refused
    monkeypatch.setattr(runner, "check_data", no_training)
    monkeypatch.setattr("mfm_bench.executors.make_executor", no_training)
    two_jobs = dataclasses.replace(suite.executor, jobs=2)
    for options in ({}, {"threads": 2}, {"deterministic": True}, {"execution": two_jobs}):
        said = []
        counts = runner.run_suite(suite, out, resume=True, progress=False, log=said.append, **options)
        assert counts == {"finished": 0, "failed": 0, "skipped": 2}, options
        assert said == [f"nothing left to run: 2 run(s) finished in {out}"], options
    assert clean_mae(out) == before
    monkeypatch.undo()
    # with a run left to do (a new seed), the settings are compared again: new runs would share rows with old ones
    with pytest.raises(MixedSettingsError, match="other execution settings"):
        runner.run_suite(suite, out, seeds=[0, 1], resume=True, threads=2, progress=False, log=lambda s: None)
    with ResultStore(out, readonly=True) as store:
        assert len(store.runs()) == 2


def test_a_limit_that_covers_every_split_warns_before_any_run_and_is_recorded(write_suite, tmp_path):
    suite = load_suite(write_suite(SUITE))
    runner.run_suite(suite, tmp_path / "full", progress=False, log=lambda s: None)
    said, started = [], []
    real = runner._train_and_evaluate

    def spy(*args, **kwargs):
        started.append(len(said))  # how many lines were said when this run started
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "_train_and_evaluate", spy)
        runner.run_suite(suite, tmp_path / "lim", limit=48, progress=False, log=said.append)
    first = next(i for i, line in enumerate(said) if "covers every split" in line)
    assert first < started[0]
    assert said[first] == (
        "warning: --limit 48 covers every split of dataset 'synthetic-factors' (train 48, valid 16, test 24 "
        "samples): its runs use all of its data, as full runs do, yet are recorded as limited runs (run ids of "
        "their own, a leaderboard titled smoke test); drop --limit to record full runs"
    )
    # the same numbers as the full runs, under other run ids, and the record and the leaderboard say why
    assert clean_mae(tmp_path / "lim") == clean_mae(tmp_path / "full")
    with ResultStore(tmp_path / "lim", readonly=True) as store:
        envs = [r["environment"] for r in store.runs()]
    assert all(any("--limit 48 covered every split" in w for w in e["data_warnings"]) for e in envs)
    md = write_leaderboard(tmp_path / "lim")["markdown"].read_text()
    assert "smoke test: --limit 48" in md and "these runs used all of its data" in md
    # a limit that cuts a split (train has 48 samples) says nothing of the kind
    said = []
    runner.run_suite(suite, tmp_path / "cut", limit=47, progress=False, log=said.append)
    assert not [line for line in said if "every split" in line]
    with ResultStore(tmp_path / "cut", readonly=True) as store:
        assert not any(r["environment"].get("data_warnings") for r in store.runs())


SLOW = """\
name: stopped
datasets: [{name: synthetic-factors, params: {n_train: 256, n_valid: 32, n_test: 32, dims: {text: 4, audio: 3},
                                              seq_len: 6, min_len: 2}}]
models:
  - {name: supervised, label: concat, params: {fusion: concat}}
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0, 1]
train: {epochs: 25, batch_size: 8, early_stop: 0}
evaluate: {conditions: [clean]}
report: {formats: [markdown, json]}
"""


def _mfm_bench(*args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "mfm_bench.cli", *args], dict(env=env, text=True, **kwargs)


def _finished(out):
    import sqlite3

    try:
        with sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("select count(*) from runs where status = 'finished'").fetchone()[0]
    except sqlite3.Error:  # not made yet
        return 0


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_suite_exits_128_plus_the_signal_and_shows_its_finished_runs(write_suite, tmp_path, sig, code):
    path, out = str(write_suite(SLOW)), tmp_path / "o"
    cmd, kw = _mfm_bench("run", path, "--out", str(out), "--no-progress")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        end = time.monotonic() + 120
        # the second run's folder: the first run is recorded finished before the second starts
        while not (out / "runs").is_dir() or len(list((out / "runs").iterdir())) < 2:
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "leaderboard of the 1 finished run(s), incomplete" in err and "--resume" in err, err
    assert "Traceback" not in err, err
    md = (out / "leaderboard.md").read_text()
    assert (
        "| concat " in md and "## Runs not finished" in md and "synthetic-factors / concat / seed 1: interrupted" in md
    )
    board = json.loads((out / "leaderboard.json").read_text())
    assert [r["status"] for r in board["runs"]] == ["finished", "interrupted"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    if sig == signal.SIGTERM:  # --resume carries on, and the leaderboard is whole again
        cmd, kw = _mfm_bench("run", path, "--out", str(out), "--no-progress", "--resume")
        done = subprocess.run(cmd, capture_output=True, timeout=300, **kw)
        assert done.returncode == 0 and "3 run(s) finished, 0 failed, 1 skipped" in done.stdout, done.stderr
        assert "## Runs not finished" not in (out / "leaderboard.md").read_text()


def test_a_terminated_parallel_suite_stops_its_workers_quietly(write_suite, tmp_path):
    """With --jobs 2 the workers are forked from the command before its first run: they must not inherit its
    SIGTERM handler, or each would print a traceback when the command stops them."""
    path, out = str(write_suite(SLOW)), tmp_path / "o"
    cmd, kw = _mfm_bench("run", path, "--out", str(out), "--no-progress", "--jobs", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        end = time.monotonic() + 120
        while _finished(out) < 1:
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err, err
    board = json.loads((out / "leaderboard.json").read_text())
    assert "finished" in [r["status"] for r in board["runs"]] and "interrupted" in [r["status"] for r in board["runs"]]


def test_sigterm_before_the_first_run_is_an_interruption_too(write_suite, tmp_path, monkeypatch, capsys):
    """A SIGTERM while the data is checked (or fetched) ends the command like one during training: 143 and the
    command that carries on, no traceback, and the previous SIGTERM handler back afterwards."""
    from mfm_bench.cli import main

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread long before
        raise AssertionError("SIGTERM was not turned into an interruption")

    monkeypatch.setattr(runner, "check_data", terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "o"
    assert main(["run", str(write_suite(SUITE)), "--out", str(out), "--no-progress"]) == 143
    err = capsys.readouterr().err
    assert "interrupted: finished runs are kept" in err and f"--out {out} --resume" in err, err
    assert "Traceback" not in err and signal.getsignal(signal.SIGTERM) is before
