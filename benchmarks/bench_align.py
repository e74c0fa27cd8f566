"""Word-level alignment at CMU-MOSEI scale: Numba kernels against the plain NumPy oracle, in the same run.

    pytest benchmarks/bench_align.py --benchmark-enable            # full scale: ~9 GB of RAM, a few minutes
    MFM_BENCH_ALIGN_SCALE=0.05 pytest benchmarks/bench_align.py --benchmark-enable   # 5% of the videos

The input is generated (mfm_bench.align.synthetic): about 3,200 videos, 450,000 words (300-d), COVAREP-like 74-d
frames at 100 Hz over about 65 hours, FACET-like 35-d frames at 30 Hz, float32 features with some NaN and -inf.
The figures go to docs/performance.md.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from mfm_bench.align import align, oracle
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences

SCALE = float(os.environ.get("MFM_BENCH_ALIGN_SCALE", "1.0"))
TARGET_SECONDS = 60.0  # at full scale, on 2 cores
TARGET_SPEEDUP = 20.0

_results: dict[str, tuple[float, dict]] = {}


@pytest.fixture(scope="module")
def mosei():
    cfg = SyntheticConfig(n_videos=max(4, round(3200 * SCALE)))
    seqs = make_sequences(cfg)
    inputs = {k: seqs[k] for k in ("words", "acoustic", "visual")}
    sizes = {k: (len(s), s.n_rows, s.feature_shape) for k, s in inputs.items()}
    print(f"\ninput (videos, rows, feature shape): {sizes}")
    return inputs


def _rounds(fn, *args):
    """A callable for benchmark.pedantic that times each round and keeps only the last output (holding every
    round's MOSEI-scale output would measure fresh-memory page faults more than the alignment)."""
    state: dict = {"times": []}

    def run():
        state.pop("out", None)
        t = time.perf_counter()
        out = fn(*args)
        state["times"].append(time.perf_counter() - t)
        state["out"] = out

    return run, state


def test_align_numba(benchmark, mosei):
    benchmark.group = "word alignment, MOSEI scale"
    small = {k: s.select(range(2)) for k, s in mosei.items()}
    align("words", small)  # load the compiled kernels from the numba cache (or compile them once)
    run, state = _rounds(align, "words", mosei)
    benchmark.pedantic(run, rounds=3, iterations=1)
    _results["numba"] = (min(state["times"]), state["out"])


def test_align_numpy_oracle(benchmark, mosei):
    benchmark.group = "word alignment, MOSEI scale"
    data = {k: s.to_dict() for k, s in mosei.items()}
    run, state = _rounds(oracle.align, "words", data)
    benchmark.pedantic(run, rounds=1, iterations=1)
    _results["oracle"] = (state["times"][0], state["out"])


def test_speedup_and_same_answer():
    if set(_results) != {"numba", "oracle"}:
        pytest.skip("needs both benchmarks of this module")
    t_numba, ours = _results["numba"]
    t_oracle, theirs = _results["oracle"]
    for name in theirs:
        assert list(ours[name].keys()) == list(theirs[name].keys()), name
        iv = np.concatenate([v[0] for v in theirs[name].values()])
        ft = np.concatenate([v[1] for v in theirs[name].values()])
        np.testing.assert_array_equal(ours[name].intervals, iv)
        np.testing.assert_array_equal(ours[name].features, ft)
    speedup = t_oracle / t_numba
    print(
        f"\nnumba {t_numba:.2f} s, numpy oracle {t_oracle:.2f} s, speedup {speedup:.1f}x "
        f"(scale {SCALE}, {os.cpu_count()} cores)"
    )
    assert speedup >= TARGET_SPEEDUP
    if SCALE >= 1.0:
        assert t_numba < TARGET_SECONDS


# -- writing the aligned output: one HDF5 group per word (the mmsdk layout) -------------------------------------
@pytest.fixture(scope="module")
def aligned_words(mosei):
    return align("words", {"words": mosei["words"], "visual": mosei["visual"]})["visual"]


def _write_rounds(runner, writer, seq, tmp_path, name):
    times = []

    def run():
        t = time.perf_counter()
        writer(tmp_path / name, seq)
        times.append(time.perf_counter() - t)
        os.unlink(tmp_path / name)

    runner.pedantic(run, rounds=1, iterations=1)
    return times[0]


def test_write_aligned_output(benchmark, aligned_words, tmp_path):
    """The low-level .csd writer and the .npz form against the plain h5py writer, on one aligned sequence."""
    from mfm_bench.align import write_csd, write_npz

    benchmark.group = "aligned output"
    t_old = _write_rounds(benchmark, oracle.write_csd, aligned_words, tmp_path, "old.csd")
    t_new = _write_rounds(_Bare(), write_csd, aligned_words, tmp_path, "new.csd")
    t_npz = _write_rounds(_Bare(), write_npz, aligned_words, tmp_path, "new.npz")
    benchmark.extra_info.update(plain_h5py_s=t_old, low_level_s=t_new, npz_s=t_npz)
    print(
        f"\n{len(aligned_words)} entries: plain h5py {t_old:.2f} s, low-level {t_new:.2f} s "
        f"({t_old / t_new:.1f}x), npz {t_npz:.3f} s ({t_old / t_npz:.0f}x)"
    )
    assert t_new * 2 <= t_old


class _Bare:
    """benchmark.pedantic's interface for the extra timings of one benchmark (pytest-benchmark times one call)."""

    def pedantic(self, fn, rounds=1, iterations=1):
        for _ in range(rounds * iterations):
            fn()
