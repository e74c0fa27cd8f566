"""Parallel suites: wall time of one suite of small runs sequentially, with ``--jobs 2``, and on Ray, in one run.

    python -m pytest benchmarks/bench_jobs.py -s          # ratios printed; about 4 minutes on 2 quiet cores

Targets (issue 13): on 2 cores ``--jobs 2`` takes at most 0.6x the sequential wall time on >= 8 runs; Ray's
overhead per run, against ``--jobs`` on the same cores, is under 1 s. Every run has one torch thread, so the
sequential baseline is the fastest one-process setting for these models, not a strawman. The pool's start-up
(spawning workers, importing torch in each) is inside the measured time.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from mfm_bench.executors import Execution
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite

QUICK = os.environ.get("MFM_BENCH_QUICK", "") not in ("", "0")
RUNS = 12  # 2 models x 6 seeds: enough runs of a few seconds each that the pool's start-up is amortised
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


def bench_jobs_ratio(tmp_path) -> None:
    suite = load_suite_text(tmp_path, SUITE.replace("EPOCHS", "8" if QUICK else "16"))
    seq = wall(suite, tmp_path / "seq", Execution())
    jobs = wall(suite, tmp_path / "jobs", Execution(jobs=2))
    result = {
        "runs": RUNS,
        "cores": len(os.sched_getaffinity(0)),
        "load_average": round(os.getloadavg()[0], 1),
        "sequential_s": round(seq, 2),
        "jobs2_s": round(jobs, 2),
        "ratio": round(jobs / seq, 3),
    }
    try:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rayt = wall(suite, tmp_path / "ray", Execution(kind="ray"))
        finally:
            ray.shutdown()
        result.update(ray_s=round(rayt, 2), ray_overhead_per_run_s=round((rayt - jobs) / RUNS, 3))
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
