"""Executors: the same runs and numbers in one process and in a pool; a killed worker costs only a retry;
Ctrl-C keeps finished runs and --resume finishes the rest."""

from __future__ import annotations

import _thread
import os
import signal
import sqlite3
import threading
import time

import pytest

from mfm_bench import executors
from mfm_bench.executors import Execution, worker_threads
from mfm_bench.merge import TIMINGS
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite

# built-in plugins only: spawned workers see the entry points, not a test's temporary plugins
SUITE = """\
name: pool
datasets: [{name: synthetic-factors, params: {n_train: 64, n_valid: 24, n_test: 32, \
dims: {text: 6, audio: 3}, seq_len: 6, min_len: 3}}]
models:
  - {name: supervised, label: concat, params: {encoder: mean, fusion: concat}}
  - {name: supervised, label: late, params: {encoder: mean, fusion: late}}
seeds: [0, 1]
train: {epochs: EPOCHS, batch_size: 16, threads: 1}
evaluate: {conditions: [clean, {missing: audio}]}
"""


def numbers(out):
    """(run id, condition, metric) -> value, timings left out; and the statuses by run id."""
    with ResultStore(out) as s:
        values = {
            (m["run_id"], m["condition"], m["metric"]): m["value"] for m in s.metrics() if m["metric"] not in TIMINGS
        }
        return values, {r["id"]: r["status"] for r in s.runs()}


def test_threads_are_split_across_jobs():
    assert worker_threads(2, cores=2) == 1 and worker_threads(2, cores=16) == 8 and worker_threads(3, cores=2) == 1
    assert worker_threads(1, cores=4) == 4
    with pytest.raises(executors.base.ExecutorError, match="jobs must be at least 1"):
        Execution(jobs=0)


@pytest.mark.parametrize("start", ["forkserver", "spawn"])
def test_sequential_and_two_jobs_give_the_same_ids_and_metrics(write_suite, tmp_path, monkeypatch, start):
    """Workers forked from the fork server (the default where there is one) or spawned (MFM_BENCH_START=spawn)."""
    import multiprocessing

    if start not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {start} on this platform")
    monkeypatch.setenv("MFM_BENCH_START", start)
    made = _capture(monkeypatch)
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "3")))
    a = run_suite(suite, tmp_path / "seq", progress=False)
    b = run_suite(suite, tmp_path / "pool", progress=False, execution=Execution(jobs=2))
    assert made[-1].ctx.get_start_method() == start
    assert a == b == {"finished": 4, "failed": 0, "skipped": 0}
    (va, sa), (vb, sb) = numbers(tmp_path / "seq"), numbers(tmp_path / "pool")
    assert set(sa) == set(sb) and len(sa) == 4 and len(va) > 40
    assert va == vb
    with ResultStore(tmp_path / "pool") as s:
        assert {r["environment"].get("device") for r in s.runs()} == {"cpu"}
        assert all((tmp_path / "pool" / "runs" / r["id"] / "model.pt").stat().st_size > 0 for r in s.runs())


FORKED = """
import os, signal, sys, threading, time
from mfm_bench import executors
from mfm_bench.executors import Execution
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite

assert "torch" not in sys.modules  # as in `mfm-bench run`: the pool starts before anything imports torch
made, killed = [], []
real = executors.make_executor


def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def kill_one():
    while not made[0].pids():
        time.sleep(0.05)
    run_id, pid = next(iter(made[0].pids().items()))
    # mid-run: the worker has started it (config.json is a run's first file) and not finished training it
    run_dir = os.path.join(sys.argv[2], "runs", run_id)
    while not os.path.exists(os.path.join(run_dir, "config.json")):
        time.sleep(0.02)
    if not os.path.exists(os.path.join(run_dir, "history.json")):
        killed.append(parent(pid) == os.getpid())  # forked from this process
        os.kill(pid, signal.SIGKILL)


def make(*a, **k):
    made.append(real(*a, **k))
    if len(made) == 1:  # after the workers were forked: no other thread while forking
        threading.Thread(target=kill_one, daemon=True).start()
    return made[-1]


executors.make_executor = make
suite = load_suite(sys.argv[1])
counts = run_suite(suite, sys.argv[2], progress=False, execution=Execution(jobs=2, retries=1))
pool = made[0]
print("COUNTS", counts, "START", pool.ctx.get_start_method(), "KILLED", killed,
      "REPLACEMENTS", pool._replacements.get_start_method())
run_suite(suite, sys.argv[3], progress=False)  # the same suite in this process, for the numbers
"""


def test_a_process_without_torch_forks_its_workers_and_replaces_a_dead_one_from_the_fork_server(write_suite, tmp_path):
    """Where the pool starts before torch is imported (the command line), it imports torch and forks its workers
    from this process; a worker killed mid-run is replaced from the fork server (by then this process has
    threads); the numbers equal a sequential run's."""
    import subprocess
    import sys

    path = write_suite(SUITE.replace("EPOCHS", "120"))
    cmd = [sys.executable, "-c", FORKED, str(path), str(tmp_path / "pool"), str(tmp_path / "seq")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert (
        "COUNTS {'finished': 4, 'failed': 0, 'skipped': 0, 'retried': 1} START fork KILLED [True] "
        "REPLACEMENTS forkserver" in done.stdout
    ), done.stdout + done.stderr[-3000:]
    (va, sa), (vb, sb) = numbers(tmp_path / "seq"), numbers(tmp_path / "pool")
    assert set(sa) == set(sb) and len(sa) == 4 and set(sb.values()) == {"finished"}
    assert va == vb


def test_workers_start_before_the_checks_and_end_cleanly_either_way(write_suite, tmp_path, monkeypatch):
    """The pool starts first (its start-up overlaps the main process's); a suite stopped by its own checks leaves
    no worker behind, and a finished one's workers exit with status 0 (they skip the interpreter's teardown)."""
    import multiprocessing

    made = _capture(monkeypatch)
    (tmp_path / "empty").mkdir()  # exists, so the suite loads; holds no data, so the checks before any run fail
    missing = SUITE.split("datasets:")[0] + f"datasets: [{{name: cmu-mosi, params: {{path: {tmp_path / 'empty'}}}}}]\n"
    missing += SUITE[SUITE.index("models:") :].replace("EPOCHS", "1")
    with pytest.raises(Exception, match="empty"):
        run_suite(load_suite(write_suite(missing)), tmp_path / "bad", progress=False, execution=Execution(jobs=2))
    assert made and not multiprocessing.active_children()
    assert all(w.proc.exitcode is not None for w in made[0].workers)
    made.clear()
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "1")))
    assert run_suite(suite, tmp_path / "ok", progress=False, execution=Execution(jobs=2))["finished"] == 4
    assert [w.proc.exitcode for w in made[0].workers] == [0, 0]


def _capture(monkeypatch):
    made = []
    real = executors.make_executor

    def make(*a, **k):
        made.append(real(*a, **k))
        return made[-1]

    monkeypatch.setattr(executors, "make_executor", make)
    return made


def _when(cond, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_worker_costs_a_retry_and_nothing_is_lost(write_suite, tmp_path, monkeypatch):
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "40")))
    made = _capture(monkeypatch)
    killed = []

    def kill_one():
        if _when(lambda: made and made[0].pids()):
            run_id, pid = next(iter(made[0].pids().items()))
            # mid-run: the worker has started it (config.json is a run's first file) and not finished training it
            run_dir = tmp_path / "o" / "runs" / run_id
            if _when(lambda: (run_dir / "config.json").exists()) and not (run_dir / "history.json").exists():
                os.kill(pid, signal.SIGKILL)
                killed.append(run_id)

    t = threading.Thread(target=kill_one)
    t.start()
    counts = run_suite(suite, tmp_path / "o", progress=False, execution=Execution(jobs=2, retries=1))
    t.join()
    assert killed and counts == {"finished": 4, "failed": 0, "skipped": 0, "retried": 1}
    con = sqlite3.connect(tmp_path / "o" / "results.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM runs WHERE status = 'finished'").fetchone() == (4, 4)
    per_run = dict(con.execute("SELECT run_id, count(*) FROM metrics GROUP BY run_id").fetchall())
    assert len(per_run) == 4 and len(set(per_run.values())) == 1  # the retried run has its whole set, once


@pytest.mark.slow
def test_a_worker_that_keeps_dying_is_recorded_failed_and_the_others_finish(write_suite, tmp_path, monkeypatch):
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "40")))
    made = _capture(monkeypatch)
    victim = []

    def kill_it():
        if not _when(lambda: made and made[0].pids()):
            return
        victim.append(next(iter(made[0].pids())))
        _when(lambda: victim[0] in made[0].pids())
        os.kill(made[0].pids()[victim[0]], signal.SIGKILL)

    t = threading.Thread(target=kill_it)
    t.start()
    counts = run_suite(suite, tmp_path / "o", progress=False, execution=Execution(jobs=2, retries=0))
    t.join()
    assert counts == {"finished": 3, "failed": 1, "skipped": 0}
    with ResultStore(tmp_path / "o") as s:
        failed = s.runs("failed")
        assert [r["id"] for r in failed] == victim and "worker process died (exit code -9)" in failed[0]["error"]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_keeps_finished_runs_and_resume_finishes(write_suite, tmp_path, monkeypatch):
    # runs long enough (about a second each) that the last two cannot finish before the interrupt arrives
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "150")))
    out = tmp_path / "o"
    made = _capture(monkeypatch)

    def interrupt_after_first():
        def one_finished():  # read-only, and a store busy with the main process's write is simply asked again
            try:
                con = sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True, timeout=1)
                try:
                    return bool(con.execute("SELECT 1 FROM runs WHERE status = 'finished' LIMIT 1").fetchone())
                finally:
                    con.close()
            except sqlite3.Error:
                return False

        if _when(lambda: out.joinpath("results.sqlite").exists() and one_finished()):
            _thread.interrupt_main()

    # Python's own Ctrl-C handler, whatever this process inherited: a shell starting a job in the background
    # ignores SIGINT for it, and then interrupt_main() does nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    t = threading.Thread(target=interrupt_after_first)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_suite(suite, out, progress=False, execution=Execution(jobs=2))
    finally:
        t.join()
        signal.signal(signal.SIGINT, previous)
    assert not any(w.proc.is_alive() for w in made[0].workers)
    _, status = numbers(out)
    done = {k for k, v in status.items() if v == "finished"}
    assert done and set(status.values()) <= {"finished", "interrupted"}
    counts = run_suite(suite, out, resume=True, progress=False, log=lambda s: None, execution=Execution(jobs=2))
    assert counts["skipped"] == len(done) and counts["finished"] == 4 - len(done)
    _, status = numbers(out)
    assert set(status.values()) == {"finished"} and len(status) == 4


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_while_an_outcome_is_being_stored_marks_that_run_interrupted(write_suite, tmp_path, monkeypatch, jobs):
    """A Ctrl-C landing while the main process stores a run's outcome (its files, then its row) left the run's row
    "running" for good: the run had left the runs in flight before it was stored. It is interrupted now, and the
    runs stored before it stay finished."""
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "1")))
    out = tmp_path / "o"
    real, calls = ResultStore.finish, []

    def finish(self, run_id, *a, **k):
        calls.append(run_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if it landed just before the second outcome's row was written
        return real(self, run_id, *a, **k)

    monkeypatch.setattr(ResultStore, "finish", finish)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out, progress=False, execution=Execution(jobs=jobs), log=lambda s: None)
    _, status = numbers(out)
    assert status[calls[0]] == "finished" and status[calls[1]] == "interrupted"
    assert "running" not in status.values()
    monkeypatch.setattr(ResultStore, "finish", real)
    run_suite(suite, out, resume=True, progress=False, execution=Execution(jobs=jobs), log=lambda s: None)
    assert set(numbers(out)[1].values()) == {"finished"}


def test_a_worker_without_the_output_folder_returns_every_run_file_and_artifact(write_suite, tmp_path, monkeypatch):
    """perform(run, None, ...) (a Ray task): config, history, model and the model's own artifacts come back in
    the outcome, and the main process writes them with the artifact's metric rows."""
    from mfm_bench import runner
    from mfm_bench.executors.dispatch import record

    def artifacts(model, dataset, run_dir, device):
        (run_dir / "generation").mkdir()
        (run_dir / "generation" / "grid.png").write_bytes(b"png")
        return [("clean", "test", "gen_acc", 0.5)]

    monkeypatch.setattr(runner, "_model_artifacts", artifacts)
    run = runner.expand(load_suite(write_suite(SUITE.replace("EPOCHS", "2"))))[0]
    outcome = runner.perform(run, None, {}, None)
    assert outcome.status == "finished", outcome.error
    assert set(outcome.files) == {"config.json", "history.json", "model.pt", "generation/grid.png"}
    assert ("clean", "test", "gen_acc", 0.5) in outcome.rows and outcome.environment["threads"] == 1
    with ResultStore(tmp_path / "o") as s:
        s.start(run.as_record(), {})
        record(s, tmp_path / "o", run, outcome)
        assert {m["metric"]: m["value"] for m in s.metrics(run.id)}["gen_acc"] == 0.5
    assert (tmp_path / "o" / "runs" / run.id / "generation" / "grid.png").read_bytes() == b"png"


def test_the_main_process_warms_the_leaderboard_once_when_a_worker_first_idles(write_suite, tmp_path, monkeypatch):
    """With nothing left to hand out and a worker free, the main process imports what the leaderboard needs, once,
    while runs are still in flight; a sequential suite never has a free worker and never calls it."""
    from mfm_bench import runner

    calls = []

    def warm():
        with ResultStore(tmp_path / "pool") as s:
            calls.append(sum(r["status"] == "finished" for r in s.runs()))

    monkeypatch.setattr(runner, "_warm_leaderboard", warm)
    # three runs of one model on two workers: when the third is handed out, or when the first of the last two ends,
    # one worker is free while a run is still in flight (unless the second run ends within a millisecond of the
    # third, which started when the first ended). With four runs of equal length the workers can finish in step,
    # two at a time, so that no worker is ever free while another runs: a fresh-clone CI run failed that way once.
    three = SUITE.replace("EPOCHS", "3").replace("seeds: [0, 1]", "seeds: [0, 1, 2]")
    suite = load_suite(
        write_suite(three.replace("  - {name: supervised, label: late, params: {encoder: mean, fusion: late}}\n", ""))
    )
    assert run_suite(suite, tmp_path / "pool", progress=False, execution=Execution(jobs=2))["finished"] == 3
    assert len(calls) == 1 and calls[0] < 3  # once, before the last run finished
    calls.clear()
    run_suite(suite, tmp_path / "seq", progress=False)
    assert calls == []
