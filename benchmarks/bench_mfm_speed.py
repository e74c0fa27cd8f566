"""MFM and MFN training speed: the fast path (``impl: fast``, the default) against the reference path
(``impl: reference``, the straightforward per-step code) in one run, through the Trainer, at MOSI shapes (text 300,
audio 5, visual 20; 20 steps; batch 32) at 1 and 2 threads; and the quickstart's wall time.

    python -m pytest benchmarks/bench_mfm_speed.py --benchmark-enable -s              # full set (tox -e bench)
    MFM_BENCH_QUICK=1 python -m pytest benchmarks/bench_mfm_speed.py -k ratio -s      # CI: under 60 s

Each ratio test interleaves reference and fast epochs (best of several rounds, so both see the same machine
load), asserts fast >= 2x reference (the quick CI mode: >= 1.1x, a regression gate) and records samples/s and peak
memory in ``benchmark.extra_info``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import torch

from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer

QUICK = os.environ.get("MFM_BENCH_QUICK", "") not in ("", "0")
STEPS = 8 if QUICK else 20  # training steps per epoch (batch 32)
ROUNDS = 2 if QUICK else 5
TARGET = 2.0  # fast / reference samples per second, CPU: the goal the full set asserts
# CI's quick mode is a regression gate, not the goal: with the current fast path MFM measured 1.77x to 1.96x and
# the MFN 2.06x to 2.78x (1 and 2 threads, full mode, 2-core machine; docs/performance.md). The floor was 1.1
# while MFM measured 1.23x, and has been 1.3 since MFM measured 1.53x.
FLOOR = 1.3
MOSI = {"text": 300, "audio": 5, "visual": 20}
reg = get_registry()


@pytest.fixture(scope="module")
def mosi():
    return reg.build(
        "dataset", "synthetic-factors", n_train=32 * STEPS, n_valid=32, n_test=32, dims=MOSI, seq_len=20, min_len=10
    )


def build(model: str, impl: str, spec):
    torch.manual_seed(0)
    if model == "mfm":
        # pinned to the MMSA-tuned MOSI architecture that issue-level targets name (not whatever the default is)
        return reg.build("model", "mfm", spec, preset="mmsa", impl=impl, fusion_params={"impl": impl})
    return reg.build("model", "supervised", spec, fusion="mfn", fusion_params={"impl": impl})  # the MFN baseline


def epoch_samples_per_sec(model: str, impl: str, data, threads: int) -> float:
    """One training epoch of STEPS steps through the Trainer; its samples/s (training time only)."""
    net = build(model, impl, data.spec)
    cfg = TrainConfig(epochs=1, batch_size=32, early_stop=0, device="cpu", threads=threads)
    return Trainer(cfg).fit(net, data.split("train"), data.split("valid")).samples_per_sec


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def compare(model: str, data, threads: int) -> dict[str, float]:
    """Best samples/s of each path over ROUNDS interleaved rounds (one warm-up epoch each first)."""
    old = torch.get_num_threads()
    best = {"reference": 0.0, "fast": 0.0}
    try:
        for impl in best:
            epoch_samples_per_sec(model, impl, data, threads)
        for _ in range(ROUNDS):
            for impl in best:
                best[impl] = max(best[impl], epoch_samples_per_sec(model, impl, data, threads))
    finally:
        torch.set_num_threads(old)
    return best


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", ["mfm", "mfn"])
def bench_ratio_fast_vs_reference(benchmark, mosi, model: str, threads: int) -> None:
    tracemalloc.start()
    best = benchmark.pedantic(compare, args=(model, mosi, threads), rounds=1, iterations=1)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ratio = best["fast"] / best["reference"]
    benchmark.extra_info.update(
        {
            "samples_per_sec_reference": round(best["reference"], 1),
            "samples_per_sec_fast": round(best["fast"], 1),
            "steps_per_sec_fast": round(best["fast"] / 32, 2),
            "ratio": round(ratio, 2),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "python_peak_mib": round(traced / 2**20, 1),
            "threads": threads,
            "steps": STEPS,
            "quick": QUICK,
        }
    )
    print(
        f"\n{model} threads={threads}: reference {best['reference']:.0f} samples/s, fast {best['fast']:.0f} "
        f"samples/s, ratio {ratio:.2f}"
    )
    want = FLOOR if QUICK else TARGET
    assert ratio >= want, f"{model} at {threads} thread(s): fast/reference = {ratio:.2f} < {want}"


@pytest.mark.skipif(QUICK, reason="the full set only (minutes)")
def bench_quickstart_wall_time(benchmark, tmp_path: Path) -> None:
    """The whole quickstart suite on the CPU: target under 60 s on 2 idle cores (the ratio to 60 s is recorded)."""
    root = Path(__file__).resolve().parents[1]
    cmd = [
        sys.executable,
        "-m",
        "mfm_bench.cli",
        "run",
        str(root / "suites/quickstart.yaml"),
        "--out",
        str(tmp_path / "qs"),
        "--device",
        "cpu",
    ]

    def run() -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        return time.perf_counter() - t0

    wall = benchmark.pedantic(run, rounds=1, iterations=1)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    benchmark.extra_info.update(
        {"wall_s": round(wall, 1), "ratio_to_60s": round(wall / 60, 2), "peak_rss_mib": round(child, 1)}
    )
    assert wall / 60 <= 1.0, f"quickstart took {wall:.0f} s (target: under 60 s on 2 idle cores)"
