"""MFM and MFN training speed: the fast path (``impl: fast``, the default) against the reference path
(``impl: reference``, the straightforward per-step code) in one run, through the Trainer, at MOSI shapes (text 300,
audio 5, visual 20; 20 steps; batch 32) at 1 and 2 threads; and the quickstart's wall time.

    python -m pytest benchmarks/bench_mfm_speed.py --benchmark-enable -s              # full set (tox -e bench)
    MFM_BENCH_QUICK=1 python -m pytest benchmarks/bench_mfm_speed.py -k ratio -s      # CI: under 60 s
    MFM_BENCH_ORIGINAL=factorized/mfm_model.py python -m pytest benchmarks/bench_mfm_speed.py -k original -s
    python -m pytest benchmarks/bench_mfm_speed.py -k gpu --benchmark-enable -s        # on a machine with CUDA

The third times the fast path against the original 2018 code itself (pliang279/factorized ``mfm_model.py``, which
this project does not ship: clone that repository first), at the same sizes; skipped when the variable is unset.
The fourth runs the GPU targets (fast >= 5x reference on one GPU; 2,000 MOSI-shaped training steps with validation
in under 10 s); skipped without CUDA (``MFM_BENCH_GPU_DEVICE=cpu MFM_BENCH_GPU_STEPS=41``: a dry run on the CPU).

Each ratio test interleaves reference and fast epochs (best of several rounds, so both see the same machine
load), asserts fast >= 2x reference (the quick CI mode: >= FLOOR, a regression gate) and records samples/s and
peak memory in ``benchmark.extra_info``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer

QUICK = os.environ.get("MFM_BENCH_QUICK", "") not in ("", "0")
STEPS = 8 if QUICK else 20  # training steps per epoch (batch 32)
ROUNDS = 2 if QUICK else 5
TARGET = 2.0  # fast / reference samples per second, CPU: the goal the full set asserts
# CI's quick mode is a regression gate, not the goal: with the current fast path MFM measured 1.45x to 1.97x and
# the MFN 1.83x to 2.75x over the full runs at 1 and 2 threads, and the quick mode MFM down to 1.33x, on the
# 2-core machine (docs/performance.md, "Every full run"). The floor was 1.1 while MFM measured 1.23x, and has
# been 1.3 since MFM measured 1.53x.
FLOOR = 1.3
WANT = FLOOR if QUICK else TARGET  # what the CPU ratio benchmarks assert
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


def epoch_samples_per_sec(model: str, impl: str, data, threads: int, device: str = "cpu") -> float:
    """One training epoch of STEPS steps through the Trainer; its samples/s (training time only)."""
    net = build(model, impl, data.spec)
    cfg = TrainConfig(epochs=1, batch_size=32, early_stop=0, device=device, threads=threads)
    return Trainer(cfg).fit(net, data.split("train"), data.split("valid")).samples_per_sec


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def interleaved(benchmark, run: dict[str, Any], threads: int) -> dict[str, float]:
    """Best samples/s of each entry of ``run`` ({"reference" or "original": epoch, "fast": epoch}, each returning
    samples/s) over ROUNDS interleaved rounds, after one warm-up epoch each (``threads``: torch's threads for
    each epoch; 0 leaves them to the Trainer).

    pytest-benchmark times the fast epochs only: each round runs the baseline's epoch as untimed setup, then the
    timed fast epoch, so the saved statistics (min, mean) are the fast path's epoch wall time (model built, one
    epoch trained, validated), which ``--benchmark-compare`` can gate between commits. With benchmarks disabled
    (the project's default: the test run and CI's quick mode) the same rounds run untimed. Nothing traces memory
    while epochs are timed: ``tracemalloc`` slows every Python allocation (docs/performance.md)."""
    baseline = next(k for k in run if k != "fast")
    best = dict.fromkeys(run, 0.0)

    def epoch(kind: str, count: bool = True) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        got = run[kind]()
        if count:
            best[kind] = max(best[kind], got)

    old = torch.get_num_threads()
    try:
        epoch(baseline, count=False)  # warm-up
        epoch("fast", count=False)
        if benchmark.disabled:  # pedantic then calls its target once: all the rounds, untimed
            benchmark.pedantic(lambda: [(epoch(baseline), epoch("fast")) for _ in range(ROUNDS)])
        else:
            benchmark.pedantic(epoch, args=("fast",), setup=lambda: epoch(baseline), rounds=ROUNDS)
    finally:
        torch.set_num_threads(old)
    return best


def paths(model: str, data, threads: int, device: str = "cpu") -> dict[str, Any]:
    """The reference and fast epochs of ``model``, for :func:`interleaved`."""
    return {
        impl: (lambda impl=impl: epoch_samples_per_sec(model, impl, data, threads, device))
        for impl in ("reference", "fast")
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", ["mfm", "mfn"])
def bench_ratio_fast_vs_reference(benchmark, mosi, model: str, threads: int) -> None:
    best = interleaved(benchmark, paths(model, mosi, threads), threads)
    check_ratio(
        benchmark,
        model,
        best,
        "reference",
        threads,
        steps_per_sec_fast=round(best["fast"] / 32, 2),
        peak_rss_mib=round(peak_rss_mib(), 1),
    )


def check_ratio(
    benchmark, what: str, best: dict[str, float], baseline: str, threads: int, want: float | None = WANT, **extra: Any
) -> None:
    """Record samples/s of the fast path and ``baseline`` and their ratio, print them, and assert ``want`` (the CPU
    target, the regression floor in quick mode; None: assert nothing)."""
    ratio = best["fast"] / best[baseline]
    benchmark.extra_info.update(
        {
            f"samples_per_sec_{baseline}": round(best[baseline], 1),
            "samples_per_sec_fast": round(best["fast"], 1),
            "ratio": round(ratio, 2),
            "threads": threads,
            "steps": STEPS,
            "quick": QUICK,
            **extra,
        }
    )
    print(
        f"\n{what} threads={threads}: {baseline} {best[baseline]:.0f} samples/s, fast {best['fast']:.0f} "
        f"samples/s, ratio {ratio:.2f}"
    )
    if want is not None:
        assert ratio >= want, f"{what} at {threads} thread(s): fast/{baseline} = {ratio:.2f} < {want}"


#: the original 2018 code's ``mfm_model.py`` (pliang279/factorized), which this project does not ship: a user
#: points here to a checkout of it to time it against the fast path
ORIGINAL = os.environ.get("MFM_BENCH_ORIGINAL", "")
#: the original's MOSI architecture as tuned by MMSA (the sizes and dropouts of ``preset: mmsa``), its names
MMSA_ORIGINAL = dict(
    input_dims=[300, 5, 20],
    h_dims=[128, 32, 128],
    memsize=64,
    windowsize=2,
    output_dim=1,
    zy_size=80,
    zl_size=64,
    za_size=80,
    zv_size=80,
    fy_size=64,
    fl_size=32,
    fa_size=16,
    fv_size=64,
    zy_to_fy_dropout=0.5,
    zl_to_fl_dropout=0.5,
    za_to_fa_dropout=0.7,
    zv_to_fv_dropout=0.5,
    fy_to_y_dropout=0.0,
)
# NN1, NN2, gamma1, gamma2 and the MFN's own output net (built by the original, never called by its MFM)
MMSA_NETS = tuple({"shapes": h, "drop": p} for h, p in ((32, 0.7), (64, 0.0), (32, 0.0), (64, 0.5), (128, 0.0)))
LAMBDA_X, LAMBDA_MMD = (0.5, 0.01, 0.5), 100.0  # preset: mmsa


def load_original(path: str):
    """The original ``mfm_model.py`` as a module (it reads no data and starts no training when imported)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mfm_model_2018", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def original_samples_per_sec(original, data) -> tuple[float, int]:
    """One epoch of the original ``MFM`` on the same training tensors, STEPS batches of 32, the loop of its
    ``mfm_mosi.py`` (batches sliced from (T, N, D) arrays, default ``optim.Adam``, ``loss.item()`` per step) with
    the label, reconstruction and MMD terms at once, as MFM trains here; returns samples/s and parameters."""
    split = data.split("train")
    x = torch.cat([split.inputs[m] * split.mask[m].unsqueeze(-1) for m in MOSI], dim=2).transpose(0, 1).numpy()
    y = split.target.reshape(-1).numpy()
    torch.manual_seed(0)
    model = original.MFM(MMSA_ORIGINAL, *MMSA_NETS)
    opt = torch.optim.Adam(model.parameters())
    l1, l2 = torch.nn.L1Loss(), torch.nn.MSELoss()
    edges = [0, 300, 305, 325]
    model.train()
    t0 = time.perf_counter()
    for b in range(STEPS):
        opt.zero_grad()
        bx, by = torch.Tensor(x[:, b * 32 : (b + 1) * 32]), torch.Tensor(y[b * 32 : (b + 1) * 32])
        (*x_hats, y_hat), mmd, _ = model.forward(bx)
        gen = sum(lam * l2(xh, bx[:, :, lo:hi]) for lam, xh, lo, hi in zip(LAMBDA_X, x_hats, edges, edges[1:]))
        loss = l1(y_hat.squeeze(1), by) + gen + LAMBDA_MMD * mmd
        loss.backward()
        opt.step()
        loss.item()
    return 32 * STEPS / (time.perf_counter() - t0), sum(p.numel() for p in model.parameters())


@pytest.mark.skipif(not Path(ORIGINAL).is_file(), reason="set MFM_BENCH_ORIGINAL to the 2018 code's mfm_model.py")
@pytest.mark.parametrize("threads", [1, 2])
def bench_fast_vs_original_2018(benchmark, mosi, monkeypatch, threads: int) -> None:
    """The fast path against the original 2018 code run as written (its ``.cuda()`` calls made no-ops, so on the
    CPU), at the same MMSA-tuned MOSI sizes, in one process, interleaved, best of ROUNDS epochs each."""
    import warnings

    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    original = load_original(ORIGINAL)

    params: list[int] = []

    def original_epoch() -> float:
        with warnings.catch_warnings():  # PyTorch 0.4 idioms (F.tanh, F.sigmoid)
            warnings.simplefilter("ignore")
            got, n = original_samples_per_sec(original, mosi)
        params.append(n)
        return got

    run = {"original": original_epoch, "fast": lambda: epoch_samples_per_sec("mfm", "fast", mosi, threads)}
    best = interleaved(benchmark, run, threads)
    best["original_params"] = params[-1]
    check_ratio(benchmark, "mfm", best, "original", threads, params_original=int(best["original_params"]))


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


#: the GPU benchmarks' device. ``MFM_BENCH_GPU_DEVICE=cpu`` runs their code on the CPU, a dry run that checks the
#: code and asserts no target (with ``MFM_BENCH_GPU_STEPS=41``: one epoch instead of 2,000 steps)
GPU = os.environ.get("MFM_BENCH_GPU_DEVICE", "cuda")
ON_CUDA = GPU.startswith("cuda")  # else a dry run
GPU_STEPS = int(os.environ.get("MFM_BENCH_GPU_STEPS", "2000"))
GPU_TARGET = 5.0  # fast / reference on one GPU (issue target)
GPU_SECONDS = 10.0  # GPU_STEPS steps of MOSI-shaped MFM training with validation each epoch (issue target)
#: the sizes of the standard CMU-MOSI folds (CMU-MultimodalSDK's standard_train_fold, standard_valid_fold and
#: standard_test_fold, as MMSA's processed MOSI has them): 1,284 / 229 / 686 segments
MOSI_SPLITS = {"n_train": 1284, "n_valid": 229, "n_test": 686}
needs_gpu = pytest.mark.skipif(
    ON_CUDA and not torch.cuda.is_available(),
    reason="needs CUDA (MFM_BENCH_GPU_DEVICE=cpu runs the code on the CPU as a dry run)",
)


def gpu_extra() -> dict[str, Any]:
    """What to record next to a GPU figure: the device's name and the peak memory PyTorch allocated on it."""
    if not ON_CUDA:
        return {"device": GPU, "dry_run": True}
    return {
        "device": torch.cuda.get_device_name(),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "torch_cuda": torch.version.cuda,
    }


@needs_gpu
def bench_gpu_fast_vs_reference(benchmark, mosi) -> None:
    """MFM (``preset: mmsa``) fast path against the reference path on one GPU, as the CPU ratio benchmarks measure
    it (training samples/s through the Trainer, its defaults: bf16 autocast on CUDA), best of ROUNDS interleaved
    epochs after a warm-up epoch each. Target: at least 5x."""
    best = interleaved(benchmark, paths("mfm", mosi, 0, GPU), 0)
    check_ratio(benchmark, f"mfm on {GPU}", best, "reference", 0, GPU_TARGET if ON_CUDA else None, **gpu_extra())


@needs_gpu
@pytest.mark.parametrize("compile_mode", [False, "reduce-overhead"], ids=["eager", "compiled"])
def bench_gpu_mosi_training(benchmark, compile_mode: bool | str) -> None:
    """A full MOSI-shaped MFM training on one GPU: ``preset: mmsa``, fast path, the standard MOSI fold sizes at
    MOSI shapes, batch 32, GPU_STEPS training steps (41 an epoch, so 49 epochs for 2,000) with validation after each
    epoch, the Trainer's defaults otherwise. The wall time of ``Trainer.fit`` (data already prepared; the
    warm-up of a short training first, so CUDA's start-up is not counted). Target: under 10 s for 2,000 steps.
    ``compiled``: the same with ``compile: reduce-overhead`` (CUDA graphs), its figures recorded beside the eager
    path's (the warm-up, which compiles, timed apart); no target asserted."""
    if compile_mode and not ON_CUDA:
        pytest.skip("compiling MFM on the CPU takes minutes; on CUDA this measures compile: reduce-overhead")
    data = reg.build("dataset", "synthetic-factors", **MOSI_SPLITS, dims=MOSI, seq_len=20, min_len=10)
    per_epoch = -(-MOSI_SPLITS["n_train"] // 32)
    epochs = max(1, -(-GPU_STEPS // per_epoch))
    train, valid = data.split("train"), data.split("valid")
    net = build("mfm", "fast", data.spec)

    def fit(n_epochs: int):
        cfg = TrainConfig(epochs=n_epochs, batch_size=32, early_stop=0, device=GPU, compile=compile_mode)
        return Trainer(cfg).fit(net, train, valid)

    t0 = time.perf_counter()
    fit(1)  # warm-up: CUDA context, cuDNN and cuBLAS handles, the allocator's pools (compiled: the compilation)
    warm_up = time.perf_counter() - t0
    if ON_CUDA:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = benchmark.pedantic(fit, args=(epochs,), rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    steps = epochs * per_epoch
    benchmark.extra_info.update(
        {
            "compile": compile_mode,
            "warm_up_s": round(warm_up, 2),
            "wall_s": round(wall, 2),
            "steps": steps,
            "epochs": epochs,
            "steps_per_sec": round(steps / wall, 1),
            "train_samples_per_sec": round(result.samples_per_sec, 1),
            "seconds_per_2000_steps": round(wall * 2000 / steps, 2),
            **gpu_extra(),
        }
    )
    how = f"compile: {compile_mode}" if compile_mode else "eager"
    print(f"\nmfm on {GPU} ({how}): {steps} steps, {epochs} epochs with validation, {wall:.2f} s", end="")
    print(f" (warm-up {warm_up:.1f} s)")
    if ON_CUDA and not compile_mode:
        assert wall * 2000 / steps <= GPU_SECONDS, f"{steps} steps took {wall:.1f} s (target: 2,000 in 10 s)"
