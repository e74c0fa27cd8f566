"""Two training processes on one machine: does each keep its speed?

Quickstart-sized MFM training (synthetic-factors at the quickstart's shapes, batch 32, whole epochs for
MFM_BENCH_THREAD_SECONDS, default 30) runs alone, then as two concurrent processes started together, first at the
default ``threads: 0`` (auto), then at torch's own default (one thread per
core: the old behaviour). The ratio is each concurrent process's samples/s over the lone process's, in one run.

    python -m pytest benchmarks/bench_threads.py --benchmark-enable -s

Target (2 cores): the auto default keeps at least 60% each; torch's default kept about 39%.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from mfm_bench.executors import usable_cores

WORKER = r"""
import json, sys, time
import torch
from mfm_bench.registry import get_registry
from mfm_bench.training import Trainer, TrainConfig

threads, seconds = int(sys.argv[1]), float(sys.argv[2])
reg = get_registry()
ds = reg.build("dataset", "synthetic-factors", seed=0, n_train=600, n_valid=150, n_test=300,
               dims={"text": 300, "audio": 5, "visual": 20})
torch.manual_seed(0)
model = reg.build("model", "mfm", ds.spec, surrogate=True)
train, valid = ds.split("train"), ds.split("valid")
cfg = TrainConfig(epochs=1, early_stop=0, batch_size=32, lr=0.002, device="cpu", threads=threads)
small = reg.build("dataset", "synthetic-factors", seed=1, n_train=64, n_valid=32, n_test=32,
                  dims={"text": 300, "audio": 5, "visual": 20})
Trainer(cfg).fit(model, small.split("train"), small.split("valid"))  # warm up
print("ready", flush=True)
sys.stdin.readline()  # start together
t, n = time.perf_counter(), 0
while time.perf_counter() - t < seconds:  # whole epochs (600 training samples, then validation) for `seconds`
    Trainer(cfg).fit(model, train, valid)
    n += len(train)
print(json.dumps({"samples_per_s": n / (time.perf_counter() - t), "threads": torch.get_num_threads()}))
"""

SECONDS = float(os.environ.get("MFM_BENCH_THREAD_SECONDS", "30"))


def _run(threads: int, copies: int) -> list[dict]:
    """``copies`` workers, started together once all have warmed up; each trains for SECONDS."""
    env = {**os.environ}
    env.pop("OMP_NUM_THREADS", None)  # the auto default reads it; measure the default a user gets
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(threads), str(SECONDS)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", "worker failed to start"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=SECONDS * 20 + 300)
        assert p.returncode == 0, f"worker failed ({p.returncode})"
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def _ratios(threads: int) -> dict:
    alone = _run(threads, 1)[0]["samples_per_s"]
    pair = _run(threads, 2)
    r = {
        "alone": alone,
        "pair": [p["samples_per_s"] for p in pair],
        "threads": pair[0]["threads"],
        "ratio": min(p["samples_per_s"] for p in pair) / alone,
    }
    print(
        f"\n{'auto' if threads == 0 else 'torch default'} ({r['threads']} threads): alone {r['alone']:.0f} "
        f"samples/s, two at once {', '.join(f'{x:.0f}' for x in r['pair'])} samples/s each, ratio {r['ratio']:.2f}",
        flush=True,
    )
    return r


@pytest.mark.benchmark(group="threads")
def bench_two_concurrent_processes(benchmark):
    results: dict[str, dict] = {}

    def measure():
        t = time.perf_counter()
        results["auto"] = _ratios(0)
        results["torch-default"] = _ratios(usable_cores())
        return time.perf_counter() - t

    benchmark.pedantic(measure, rounds=1, iterations=1)
    for name, r in results.items():
        benchmark.extra_info[f"{name}_ratio"] = round(r["ratio"], 3)
    assert results["auto"]["ratio"] >= 0.6, results
