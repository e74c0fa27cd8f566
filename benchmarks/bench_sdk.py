"""`align` and `prepare` against the CMU-MultimodalSDK itself, on the same CMU-MOSI-sized files, in one run.

    pytest benchmarks/bench_sdk.py --benchmark-enable -s                  # CMU-MOSI size: a few minutes
    MFM_BENCH_QUICK=1 pytest benchmarks/bench_sdk.py --benchmark-enable -s   # 6 of the 93 videos: well under a minute

Needs ``pip install -e .[sdk]`` (cmu-multimodal-sdk); skipped without it. The inputs are generated
(mfm_bench.align.synthetic, ``SyntheticConfig.mosi``): 93 videos, about 51,000 words (300-d), COVAREP-like 74-d
frames at 100 Hz, FACET-like 35-d frames at 30 Hz, about 2,200 labelled segments, gzip-compressed as the CMU files
are. Real CMU-MOSI timestamps give the same shape of work; the figures go to docs/performance.md.

- align: the whole `mfm-bench align --impute` process against the SDK's align, impute and deploy, each a process
  of its own (benchmarks/sdk_pipeline.py). Target: ours at least 10x faster. `--format npz` is timed too (no
  target: it is not the mmsdk layout).
- prepare: ``prepare_word_level`` (as bench_prepare.py calls it) against the SDK's pipeline (load, align to
  words with the average, impute, align to the labels, tensors), both in this process. Target: at least 40x.

The targets are asserted at full size only; in quick mode process start-up weighs more, and ours must still win.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mmsdk.mmdatasdk", reason="cmu-multimodal-sdk is not installed (pip install -e .[sdk])")

from mfm_bench.align import prepare_word_level, write_csd  # noqa: E402
from mfm_bench.align.pipeline import warm_kernels  # noqa: E402
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences, standard_folds  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import sdk_pipeline  # noqa: E402

QUICK = os.environ.get("MFM_BENCH_QUICK") == "1"
SCALE = 0.06 if QUICK else float(os.environ.get("MFM_BENCH_SDK_SCALE", "1.0"))
TARGET_ALIGN = 10.0
TARGET_PREPARE = 40.0
SEQ_LEN = 50


@pytest.fixture(scope="module")
def mosi(tmp_path_factory):
    seqs = make_sequences(SyntheticConfig.mosi(n_videos=max(4, round(93 * SCALE))))
    folds = standard_folds(list(seqs["labels"].keys()))
    d = tmp_path_factory.mktemp("mosi_csd")
    rows = {n: s.n_rows for n, s in seqs.items()}
    paths = {n: str(write_csd(d / f"{n}.csd", seqs.pop(n), compression="gzip")) for n in list(seqs)}
    print(f"\nCMU-MOSI-shaped input at scale {SCALE}: rows {rows}")
    return paths, folds


def _timed(fn, *args, **kw) -> float:
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def _process(argv: list[str]) -> None:
    """Run one whole process, output discarded (the SDK prints a line per step), failing loudly."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stderr[-3000:]}"


def test_align_process_against_the_sdk(benchmark, mosi, tmp_path):
    paths, _ = mosi
    inputs = {n: p for n, p in paths.items() if n != "labels"}
    items = [f"{n}={p}" for n, p in inputs.items()]
    ours = [sys.executable, "-m", "mfm_bench.cli", "align", "--reference", "words", "--impute", "--no-progress"]
    ours += ["--out", str(tmp_path / "ours"), *items]
    theirs = [sys.executable, sdk_pipeline.__file__, str(tmp_path / "sdk"), "words", *items]
    times: dict[str, float] = {}

    npz = [a if a != str(tmp_path / "ours") else str(tmp_path / "npz") for a in ours] + ["--format", "npz"]

    def run():
        times["mfm-bench align"] = _timed(_process, ours)
        times["sdk align + deploy"] = _timed(_process, theirs)
        times["mfm-bench align --format npz"] = _timed(_process, npz)  # for users who do not need mmsdk to read it

    benchmark.group = "CMU-MOSI size, against the CMU-MultimodalSDK"
    benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = times["sdk align + deploy"] / times["mfm-bench align"]
    benchmark.extra_info.update({k: round(v, 3) for k, v in times.items()}, speedup=round(ratio, 1))
    print("\n" + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()) + f"; speedup {ratio:.1f}x (scale {SCALE})")
    assert (tmp_path / "npz" / "acoustic.npz").is_file()
    for name in inputs:  # both wrote every sequence
        assert (tmp_path / "ours" / f"{name}.csd").is_file() and (tmp_path / "sdk" / f"{name}.csd").is_file()
    assert ratio >= (TARGET_ALIGN if SCALE >= 1.0 else 1.0)


def test_prepare_against_the_sdk(benchmark, mosi):
    paths, folds = mosi
    warm_kernels()  # the compiled kernels come from numba's cache in a fresh process too
    out: dict[str, dict] = {}
    times: dict[str, float] = {}

    def ours():
        out["ours"] = prepare_word_level(paths, "words", "labels", SEQ_LEN, folds)

    def theirs():
        with open(os.devnull, "w") as null, redirect_stdout(null), redirect_stderr(null):  # a line per step
            out["sdk"] = sdk_pipeline.sdk_prepare(paths, "words", "labels", SEQ_LEN, folds)

    def run():
        times["prepare_word_level"] = _timed(ours)
        times["sdk pipeline"] = _timed(theirs)

    benchmark.group = "CMU-MOSI size, against the CMU-MultimodalSDK"
    benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = times["sdk pipeline"] / times["prepare_word_level"]
    benchmark.extra_info.update({k: round(v, 3) for k, v in times.items()}, speedup=round(ratio, 1))
    print("\n" + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()) + f"; speedup {ratio:.1f}x (scale {SCALE})")
    for fold, mine in out["ours"].items():  # the same answer: same segments, same tensors (NaN where COVAREP has)
        sdk = out["sdk"][fold]
        assert sorted(mine["ids"]) == sorted(sdk["ids"]), fold
        order = np.argsort(sdk["ids"])
        back = np.argsort(np.argsort(mine["ids"]))
        for name in ("words", "acoustic", "visual", "labels"):
            np.testing.assert_allclose(mine[name], sdk[name][order][back], rtol=1e-5, atol=1e-6, err_msg=name)
    assert ratio >= (TARGET_PREPARE if SCALE >= 1.0 else 1.0)
