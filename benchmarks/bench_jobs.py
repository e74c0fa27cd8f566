"""Parallel suites: wall time of one suite of small runs sequentially and with ``--jobs 2``, from the command line
as users run it; and Ray's overhead per run against ``--jobs``, in this process.

    python -m pytest benchmarks/bench_jobs.py -s          # figures printed; about 2 minutes on 2 quiet cores
    MFM_BENCH_JOBS_PAIRS=7 python -m pytest benchmarks/bench_jobs.py -s      # the median of 7 pairs, not 3

Targets (issue 13): on 2 cores ``--jobs 2`` takes at most 0.6x the sequential wall time on >= 8 runs; Ray's
overhead per run, against ``--jobs`` on the same cores, is under 1 s. Every run has one torch thread, so the
sequential baseline is the fastest one-process setting for these models, not a strawman.

The ratio is measured on ``mfm-bench run`` processes, a sequential one then a ``--jobs 2`` one, ``ROUNDS`` times;
it is the median of the pairs' ratios (a pair sees one machine speed, which drifts between pairs on a shared
machine). Both then pay what a user pays, the interpreter's start, the imports, the checks and the leaderboard,
and ``--jobs`` also its workers' start-up. Measured inside one process instead, whichever suite
runs first pays one-time imports that the other does not (the leaderboard's statistics; until commit 6b4a8f7 also
``torch._dynamo`` with the first optimizer, about 1 s).

Just before each pair it records ``cpu_pair_slowdown``: how much slower two CPU-bound processes ran side by side
than one alone. ``--jobs 2`` can only approach 0.5x where that is 1.0; on a virtual machine whose host shares the
cores it is often more. It is measured in the seconds before the pair, not during it, so it describes the machine
over the benchmark rather than predicting any one pair's ratio (docs/scaling.md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import pytest

from mfm_bench.executors import Execution
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite

QUICK = os.environ.get("MFM_BENCH_QUICK", "") not in ("", "0")
RUNS = 12  # 2 models x 6 seeds
# pairs of (sequential, --jobs 2) runs; more give a steadier median on a noisy machine (about 20 s a pair here)
ROUNDS = max(1, int(os.environ.get("MFM_BENCH_JOBS_PAIRS", 1 if QUICK else 3)))
SUITE = """\
name: jobs
datasets: [{name: synthetic-factors, params: {n_train: 600, n_valid: 100, n_test: 100, dims: {text: 32, audio: 8}}}]
models:
  - {name: supervised, label: concat, params: {fusion: concat}}
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0, 1, 2, 3, 4, 5]
train: {epochs: EPOCHS, early_stop: 0, batch_size: 32, threads: 1, device: cpu}
evaluate: {conditions: [clean]}
"""


def wall(suite, out, execution):
    t0 = time.perf_counter()
    counts = run_suite(suite, out, progress=False, log=lambda s: None, execution=execution)
    assert counts["finished"] == RUNS and counts["failed"] == 0
    return time.perf_counter() - t0


def cli_wall(path, out, jobs: int) -> float:
    """``mfm-bench run`` in its own process, as a user runs it: wall time from start to exit."""
    cmd = [sys.executable, "-m", "mfm_bench.cli", "run", str(path), "--out", str(out)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd + (["--jobs", str(jobs)] if jobs > 1 else []), capture_output=True, text=True)
    took = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    with ResultStore(out) as store:
        assert sum(r["status"] == "finished" for r in store.runs()) == RUNS
    return took


LOOP = """
import time
def work():
    t, s = time.perf_counter(), 0
    for i in range(5_000_000):
        s += i * i
    return time.perf_counter() - t
print(work())
"""


def cpu_pair_slowdown() -> float:
    """How much slower two CPU-bound processes ran side by side than one alone, on this machine now: the slower
    of two pure-Python loops started together over the mean of the same loop alone just before and just after
    (1.0 where two cores are really there). Recorded next to the ratio, never asserted: on a virtual machine the
    host decides it (on the 2-vCPU machine of docs/scaling.md the two loops of one pair took 0.177 s and 0.305 s,
    the loop alone 0.186 s)."""
    one = [sys.executable, "-c", LOOP]

    def alone() -> float:
        return float(subprocess.run(one, capture_output=True, text=True, check=True).stdout)

    before = alone()
    procs = [subprocess.Popen(one, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    together = max(float(p.communicate()[0]) for p in procs)
    return together / ((before + alone()) / 2)


def bench_jobs_ratio(tmp_path) -> None:
    suite = load_suite_text(tmp_path, SUITE.replace("EPOCHS", "8" if QUICK else "16"))
    seqs, jobss, pair_slowdowns = [], [], []
    for k in range(ROUNDS):  # alternating, so both see the same machine
        pair_slowdowns.append(cpu_pair_slowdown())
        seqs.append(cli_wall(suite.path, tmp_path / f"cli-seq-{k}", 1))
        jobss.append(cli_wall(suite.path, tmp_path / f"cli-jobs-{k}", 2))
    ratios = [j / s for s, j in zip(seqs, jobss)]  # in the order of the rounds, as the slowdowns
    result = {
        "runs": RUNS,
        "cores": len(os.sched_getaffinity(0)),
        "load_average": round(os.getloadavg()[0], 1),
        "sequential_s": [round(t, 2) for t in seqs],
        "jobs2_s": [round(t, 2) for t in jobss],
        "pair_ratios": [round(r, 3) for r in ratios],
        # before each pair: two CPU-bound processes together against one alone (1.0: two whole cores)
        "cpu_pair_slowdown": [round(x, 2) for x in pair_slowdowns],
        "ratio": round(statistics.median(ratios), 3),  # an even number of pairs: the mean of the middle two
    }
    try:
        import ray

        inproc = wall(suite, tmp_path / "jobs", Execution(jobs=2))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rayt = wall(suite, tmp_path / "ray", Execution(kind="ray"))
        finally:
            ray.shutdown()
        result.update(
            jobs2_in_process_s=round(inproc, 2),
            ray_s=round(rayt, 2),
            ray_overhead_per_run_s=round((rayt - inproc) / RUNS, 3),
        )
    except ImportError:
        result["ray"] = "not installed"
    print("\n" + json.dumps(result))
    assert result["ratio"] <= 0.6, result
    if "ray_s" in result:
        assert result["ray_overhead_per_run_s"] < 1.0, result


def load_suite_text(tmp_path, text):
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return load_suite(path)


pytestmark = pytest.mark.slow
