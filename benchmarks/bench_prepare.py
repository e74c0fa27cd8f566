"""The whole word-level pipeline from .csd files (read, align to words, impute, align to segments, tensors).

    pytest benchmarks/bench_prepare.py --benchmark-enable      # MOSEI scale: ~9 GB of .csd files in a temp folder
    MFM_BENCH_PREPARE_SCALE=0.1 pytest benchmarks/bench_prepare.py --benchmark-enable

The ratio test compares prepare with a bare single-process h5py read of the same gzip-compressed inputs.

The generated files are written once (not timed) and deleted afterwards. The figures go to docs/performance.md.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

from mfm_bench.align import prepare_word_level, write_csd
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences, standard_folds

SCALE = float(os.environ.get("MFM_BENCH_PREPARE_SCALE", "1.0"))


@pytest.fixture(scope="module")
def csd_files(tmp_path_factory):
    seqs = make_sequences(SyntheticConfig(n_videos=max(4, round(3200 * SCALE))))
    folds = standard_folds(list(seqs["labels"].keys()))
    d = tmp_path_factory.mktemp("mosei_csd")
    paths = {}
    for name in list(seqs):
        paths[name] = str(write_csd(d / f"{name}.csd", seqs.pop(name)))
        gc.collect()
    sizes = {n: f"{os.path.getsize(p) / 1e9:.2f} GB" for n, p in paths.items()}
    print(f"\nfiles: {sizes}")
    yield paths, folds
    for p in paths.values():
        os.unlink(p)


def test_prepare_word_level_from_files(benchmark, csd_files):
    paths, folds = csd_files
    times: list[float] = []

    def run():
        t = time.perf_counter()
        out = prepare_word_level(paths, "words", "labels", 50, folds, dtype=np.float32)
        times.append(time.perf_counter() - t)
        return out

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    n = {f: len(v["ids"]) for f, v in out.items()}
    print(
        f"\nprepare_word_level: {times[0]:.1f} s, segments per fold {n}, "
        f"train acoustic {out['train']['acoustic'].shape}"
    )
    assert sum(n.values()) > 0
    assert out["train"]["acoustic"].shape[1:] == (50, 74)


# -- prepare against a bare read of its inputs ------------------------------------------------------------------
TARGET_RATIO = 1.3  # prepare within 1.3x of a bare single-process h5py read of its gzip-compressed inputs


@pytest.fixture(scope="module")
def gzip_files(tmp_path_factory):
    """The CMU files are gzip-compressed HDF5: decompression, not alignment, is the floor."""
    seqs = make_sequences(SyntheticConfig(n_videos=max(4, round(3200 * SCALE)), seed=1))
    folds = standard_folds(list(seqs["labels"].keys()))
    d = tmp_path_factory.mktemp("gzip_csd")
    paths = {name: str(write_csd(d / f"{name}.csd", seqs.pop(name), compression="gzip")) for name in list(seqs)}
    yield paths, folds
    for p in paths.values():
        os.unlink(p)


def bare_read(paths) -> int:
    """Every array of every file, read whole with h5py in this process: the floor a reader cannot beat alone."""
    import h5py

    n = 0
    for p in paths.values():
        with h5py.File(p, "r") as f:
            data = f[next(iter(f.keys()))]["data"]
            for vid in data.values():
                n += vid["features"][()].size + vid["intervals"][()].size
    return n


def test_prepare_within_ratio_of_a_bare_read(benchmark, gzip_files):
    paths, folds = gzip_files
    times: dict[str, float] = {}

    def timed(name, fn, *args, **kw):
        t = time.perf_counter()
        fn(*args, **kw)
        times[name] = time.perf_counter() - t

    def run():
        # untimed first call: loads the compiled alignment kernels (numba's on-disk cache, about a second), which
        # the first timed call would otherwise pay alone
        prepare_word_level(paths, "words", "labels", 50, folds, dtype=np.float32)
        timed("bare", bare_read, paths)
        timed("prepare", prepare_word_level, paths, "words", "labels", 50, folds, dtype=np.float32)
        timed(
            "prepare, 2 read workers",
            prepare_word_level,
            paths,
            "words",
            "labels",
            50,
            folds,
            dtype=np.float32,
            workers=2,
        )

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratio = times["prepare"] / times["bare"]
    benchmark.extra_info.update({k: round(v, 3) for k, v in times.items()}, ratio=round(ratio, 3))
    print(
        "\n" + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()) + f"; prepare / bare read = {ratio:.2f} "
        f"(2 read workers: {times['prepare, 2 read workers'] / times['bare']:.2f})"
    )
    assert ratio <= TARGET_RATIO
