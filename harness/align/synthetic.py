"""Generated CMU-style computational sequences, from a few videos (tests) to CMU-MOSI and CMU-MOSEI scale (benchmarks).

The defaults give about CMU-MOSEI's size: 3,200 videos, 450,000 words, 65 hours of video, COVAREP 74-d at
100 Hz, FACET 35-d at 30 Hz, GloVe-like 300-d word vectors and about 7 labelled segments per video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .csd import CompSeq


@dataclass
class SyntheticConfig:
    n_videos: int = 3200
    words_per_video: int = 140  # mean; 3,200 x 140 ~ 450,000 words
    video_seconds: tuple[float, float] = (20.0, 126.0)  # uniform; mean 73 s, 65 hours in all
    word_dim: int = 300
    acoustic_dim: int = 74
    acoustic_hz: float = 100.0
    visual_dim: int = 35
    visual_hz: float = 30.0
    segments_per_video: int = 7
    label_dim: int = 1
    nan_fraction: float = 1e-4  # COVAREP rows with NaN / -inf values
    zero_length_words: float = 0.01  # fraction of words with start == end (forced aligners produce them)
    dtype: str = "float32"
    seed: int = 0

    @classmethod
    def tiny(cls, **kw) -> SyntheticConfig:
        base = dict(
            n_videos=4,
            words_per_video=12,
            video_seconds=(2.0, 5.0),
            word_dim=3,
            acoustic_dim=4,
            visual_dim=2,
            segments_per_video=2,
            label_dim=1,
            nan_fraction=0.01,
            zero_length_words=0.1,
        )
        base.update(kw)
        return cls(**base)

    @classmethod
    def mosi(cls, **kw) -> SyntheticConfig:
        """About CMU-MOSI's size: 93 videos of 1.5 to 5.5 minutes, about 51,000 words, about 2,200 segments."""
        base = dict(n_videos=93, words_per_video=549, video_seconds=(90.0, 330.0), segments_per_video=24)
        base.update(kw)
        return cls(**base)


def _random_rows(rng, n: int, dim: int, dtype) -> np.ndarray:
    """(n, dim) normal values: rows drawn from a pool of 65,536 random rows (drawing 1.7e9 fresh values for
    MOSEI-scale COVAREP takes a minute and tells the alignment nothing more)."""
    pool = rng.standard_normal((min(n, 1 << 16), dim), dtype=np.float32).astype(dtype, copy=False)
    if n <= len(pool):
        return pool[:n].copy()
    return pool[rng.integers(0, len(pool), size=n)]


def _frames(name: str, lengths: np.ndarray, hz: float, dim: int, dtype, rng, vids, nan_fraction=0.0) -> CompSeq:
    counts = np.floor(lengths * hz).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    local = np.arange(total, dtype=np.float64) - np.repeat(offsets[:-1], counts)
    intervals = np.empty((total, 2), dtype=np.float64)
    intervals[:, 0] = local / hz
    intervals[:, 1] = (local + 1) / hz
    features = _random_rows(rng, total, dim, dtype)
    if nan_fraction > 0 and total:
        bad = rng.random(total) < nan_fraction
        cols = rng.integers(0, dim, size=int(bad.sum()))
        vals = np.where(rng.random(len(cols)) < 0.5, np.nan, -np.inf).astype(features.dtype)
        features[np.flatnonzero(bad), cols] = vals
    return CompSeq(name, list(vids), offsets, intervals, features, {"dataset name": "synthetic"}, videos=list(vids))


def make_sequences(cfg: SyntheticConfig | None = None) -> dict[str, CompSeq]:
    """``{"words", "acoustic", "visual", "labels"}`` raw (unaligned) sequences for ``cfg``."""
    cfg = cfg or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    dtype = np.dtype(cfg.dtype)
    vids = [f"v{i:05d}" for i in range(cfg.n_videos)]
    lengths = rng.uniform(*cfg.video_seconds, size=cfg.n_videos)
    n_words = np.maximum(1, rng.poisson(cfg.words_per_video, size=cfg.n_videos))
    # words: sorted boundary times taken in pairs, so words never overlap and gaps ("sp") lie between them
    w_iv, seg_iv, seg_counts = [], [], []
    for T, n in zip(lengths, n_words):
        b = np.sort(rng.uniform(0.0, T, size=2 * n)).reshape(n, 2)
        zero = rng.random(n) < cfg.zero_length_words
        b[zero, 1] = b[zero, 0]
        w_iv.append(b)
        k = max(1, int(rng.poisson(cfg.segments_per_video)))
        cuts = np.sort(rng.uniform(0.0, T, size=2 * k)).reshape(k, 2)
        seg_iv.append(cuts)
        seg_counts.append(k)
    w_counts = n_words.astype(np.int64)
    w_off = np.zeros(cfg.n_videos + 1, dtype=np.int64)
    np.cumsum(w_counts, out=w_off[1:])
    words = CompSeq(
        "words",
        vids,
        w_off,
        np.concatenate(w_iv),
        _random_rows(rng, int(w_off[-1]), cfg.word_dim, dtype),
        {"dataset name": "synthetic"},
        videos=list(vids),
    )
    s_off = np.zeros(cfg.n_videos + 1, dtype=np.int64)
    np.cumsum(seg_counts, out=s_off[1:])
    labels = CompSeq(
        "labels",
        vids,
        s_off,
        np.concatenate(seg_iv),
        rng.uniform(-3, 3, size=(int(s_off[-1]), cfg.label_dim)).astype(dtype),
        {"dataset name": "synthetic"},
        videos=list(vids),
    )
    acoustic = _frames("acoustic", lengths, cfg.acoustic_hz, cfg.acoustic_dim, dtype, rng, vids, cfg.nan_fraction)
    visual = _frames("visual", lengths, cfg.visual_hz, cfg.visual_dim, dtype, rng, vids)
    return {"words": words, "acoustic": acoustic, "visual": visual, "labels": labels}


def standard_folds(vids: list[str], seed: int = 0) -> dict[str, list[str]]:
    """A 70/10/20 split of ``vids`` (the shape of the CMU standard folds)."""
    rng = np.random.default_rng(seed)
    order = [vids[i] for i in rng.permutation(len(vids))]
    a, b = int(0.7 * len(vids)), int(0.8 * len(vids))
    return {"train": order[:a], "valid": order[a:b], "test": order[b:]}
