"""The whole word-level pipeline from .csd files (read, align to words, impute, align to segments, tensors).

    pytest benchmarks/bench_prepare.py --benchmark-enable      # MOSEI scale: ~9 GB of .csd files in a temp folder
    MFM_BENCH_PREPARE_SCALE=0.1 pytest benchmarks/bench_prepare.py --benchmark-enable

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
    print(f"\nprepare_word_level: {times[0]:.1f} s, segments per fold {n}, "
          f"train acoustic {out['train']['acoustic'].shape}")
    assert sum(n.values()) > 0
    assert out["train"]["acoustic"].shape[1:] == (50, 74)
