"""A search interrupted more than once, sequentially and with worker processes, ends with the trials (run ids and
configurations) and retrains of one never interrupted and leaves nothing "not finished"; validate counts a
search's trials beside the grid's runs; a refused range end says which end."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mfm_bench.leaderboard import write_leaderboard
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import SuiteError, load_suite

pytest.importorskip("optuna")

# the review's case: 8 random trials and a median pruner (a few choices, so the sampler repeats configurations)
SUITE = """\
name: resumed
datasets: [{name: synthetic-factors, params: {n_train: 64, n_valid: 32, n_test: 16, \
dims: {text: 5, audio: 3}, seq_len: 5, min_len: 2, noise: 0.1}}]
models:
  - name: supervised
    label: tuned
    params: {encoder: mean, fusion: concat}
    search:
      params: {train.lr: {choices: [0.02, 1.0e-6]}, head_hidden: {low: 4, high: 16}}
      sampler: random
      n_trials: 8
      pruner: {kind: median, n_startup_trials: 1}
seeds: [3, 4]
train: {epochs: 3, batch_size: 16, threads: 1}
"""


def outcome(out):
    """(trial run id -> configuration, the retrains' ids, trials asked) of a folder's search, and its statuses."""
    with ResultStore(out) as s:
        runs = {r["id"]: r for r in s.runs()}
        [search] = s.searches()
    trials = {rid: json.dumps(runs[rid]["config"]["search"]["values"], sort_keys=True) for rid in search["trial_ids"]}
    return (trials, sorted(search["final_ids"]), search["trials"]), {r["status"] for r in runs.values()}


def check_like_uninterrupted(out, whole, retrains=True):
    """``retrains=False``: the trials only (with two workers, what the pruner stops, and so the choice, depends on
    which trial reported first)."""
    got, statuses = outcome(out)
    expected = outcome(whole)[0]
    assert (got if retrains else got[0]) == (expected if retrains else expected[0]) and statuses == {"finished"}
    md = write_leaderboard(out, ["markdown"])["markdown"].read_text()
    assert "Runs not finished" not in md and "interrupted" not in md


def test_a_search_interrupted_twice_ends_as_one_never_interrupted(write_suite, tmp_path, monkeypatch):
    """Ctrl-C as a trial starts (leaving it interrupted), after finished trials, in two sessions running: the
    second resume runs the run ids each session left interrupted, and no new configuration instead."""
    import mfm_bench.runner as runner

    suite = load_suite(write_suite(SUITE))
    run_suite(suite, tmp_path / "whole", progress=False)
    real, started, stop_at = runner.perform, [], [3, 6]  # the 3rd start, then the 3rd start of the first resume

    def perform(run, *a, **k):
        started.append(run.id)
        if stop_at and len(started) == stop_at[0]:
            stop_at.pop(0)
            raise KeyboardInterrupt
        return real(run, *a, **k)

    monkeypatch.setattr(runner, "perform", perform)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False)
    first_cut = started[2]
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert started[3] == first_cut  # the interrupted trial first, under its own run id
    second_cut = started[5]
    with ResultStore(out) as s:  # finished trials before the second cut, so the bug's case
        assert sum(r["status"] == "finished" for r in s.runs()) >= 3
        assert {r["id"] for r in s.runs() if r["status"] == "interrupted"} == {second_cut}
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None)
    assert started[6] == second_cut
    check_like_uninterrupted(out, tmp_path / "whole")


@pytest.mark.slow
def test_a_search_on_two_workers_interrupted_twice_ends_as_one_never_interrupted(write_suite, tmp_path, monkeypatch):
    """The review's case: --jobs 2, Ctrl-C while a trial is in flight on the other worker, twice."""
    from mfm_bench.executors import Execution
    from mfm_bench.search_run import SearchSource

    suite = load_suite(write_suite(SUITE))
    jobs = Execution(jobs=2)
    run_suite(suite, tmp_path / "whole", progress=False, execution=jobs)
    real, told, cuts = SearchSource.done, [], [3, 5]
    out = tmp_path / "o"

    def other_in_flight() -> bool:  # the other worker's run, started in the store and not yet come back
        con = sqlite3.connect(out / "results.sqlite")
        try:
            return con.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] > 0
        finally:
            con.close()

    def done(self, run, result):  # in the main process: Ctrl-C as the 3rd outcome, then the 5th, comes back
        real(self, run, result)
        told.append(run.id)
        # both workers' outcomes can come back in one wait, leaving none in flight: then the next outcome's turn
        if cuts and len(told) >= cuts[0] and other_in_flight():
            cuts.pop(0)
            raise KeyboardInterrupt

    monkeypatch.setattr(SearchSource, "done", done)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False, execution=jobs)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, resume=True, progress=False, log=lambda s: None, execution=jobs)
    with ResultStore(out) as s:
        assert "interrupted" in {r["status"] for r in s.runs()}
    run_suite(suite, out, resume=True, progress=False, log=lambda s: None, execution=jobs)
    check_like_uninterrupted(out, tmp_path / "whole", retrains=False)


def test_validate_counts_the_searches_beside_the_grid(write_suite, capsys):
    from mfm_bench.cli import main

    assert main(["validate", str(write_suite(SUITE))]) == 0
    printed = capsys.readouterr().out
    assert "x 1 model(s) x 2 seed(s): 0 grid run(s) + a search of 8 trials, 1 condition(s) each)" in printed
    both = "[{name: synthetic-factors, label: a}, {name: synthetic-factors, label: b,"
    plain = "models:\n  - {name: supervised, label: plain, params: {encoder: mean, fusion: concat}}\n"
    two = SUITE.replace("[{name: synthetic-factors,", both).replace("models:\n", plain)
    assert main(["validate", str(write_suite(two))]) == 0
    assert "2 dataset(s) x 2 model(s) x 2 seed(s): 4 grid run(s) + 2 searches of 16 trials in all," in (
        capsys.readouterr().out
    )


def test_a_refused_range_end_says_which_end(write_suite):
    cases = [
        ("train.batch_size: {low: 0, high: 8}", r"params.train.batch_size: low 0 is refused: .*at least 1$"),
        ("train.epochs: {low: 1, high: 2.5}", r"params.train.epochs: high 2.5 is refused: expected an integer"),
        ("encoder: {choices: [mean, nope]}", r"params.encoder: choice 'nope' is refused: unknown encoder 'nope'"),
    ]
    for param, match in cases:
        text = SUITE.replace("head_hidden: {low: 4, high: 16}", param)
        with pytest.raises(SuiteError, match=match) as e:
            load_suite(write_suite(text))
        assert "trying" not in str(e.value)
