"""The Numba alignment against the NumPy oracle (mmsdk's rules) on adversarial random sequences."""

from __future__ import annotations

import numpy as np
import pytest

from mfm_bench.align import CompSeq, align, hard_unify, impute, oracle, unify

EPS = 1e-5


def _nudge(rng, x, dtype):
    """Move some values by just under or just over eps, so the strict comparisons are exercised."""
    x = x.copy()
    pick = rng.random(x.shape) < 0.3
    steps = rng.choice([-1.1e-5, -0.9e-5, -0.5e-5, 0.5e-5, 0.9e-5, 1.1e-5, 1e-5, -1e-5], size=x.shape)
    x[pick] += steps[pick]
    return x.astype(dtype)


def _intervals(rng, n, span, dtype, kind):
    grid = 0.25
    if kind == "frames":  # overlapping windows: 4 steps long, 1 step apart, some touching exactly
        start = np.arange(n) * grid + rng.choice([0.0, 0.0, 0.5 * grid], size=n)
        end = start + rng.choice([grid, 2 * grid, 4 * grid], size=n)
    else:  # words-like rows on a coarse grid: touching, nested, duplicated starts
        start = rng.integers(0, int(span / grid), size=n) * grid
        end = start + rng.integers(0, 6, size=n) * grid
    iv = np.stack([start, end], axis=1)
    iv = _nudge(rng, iv, np.float64)
    inv = rng.random(n) < 0.08  # inverted rows
    iv[inv] = iv[inv][:, ::-1]
    zero = rng.random(n) < 0.08  # zero-length rows
    iv[zero, 1] = iv[zero, 0]
    dup = rng.random(n) < 0.1  # duplicate start times
    if n > 1:
        iv[dup, 0] = iv[0, 0]
    return iv.astype(dtype)


def _features(rng, n, shape, dtype, nan_rows=True):
    ft = rng.standard_normal((n, *shape)).astype(dtype)
    if nan_rows and n:
        bad = rng.random(n) < 0.1
        ft[bad] = np.nan
        inf = rng.random(n) < 0.05
        ft[inf, ..., 0] = -np.inf
    return ft


def _case(
    seed, *, ref_dtype=np.float64, other_dtypes=(np.float64, np.float32), dims=((3,), (1,), (2, 2)), shuffle=None
):
    rng = np.random.default_rng(seed)
    shuffle = seed % 2 == 0 if shuffle is None else shuffle  # unshuffled frames take the already-sorted path
    vids = [f"vid{i}" for i in range(5)]
    seqs = {}
    span = 6.0
    data = {}
    for v in vids:
        n = int(rng.integers(0, 9))
        data[v] = (_intervals(rng, n, span, ref_dtype, "words"), _features(rng, n, (4,), np.float32, nan_rows=False))
    # a reference row far beyond every candidate: no hits anywhere
    iv, ft = data[vids[0]]
    data[vids[0]] = (
        np.concatenate([iv, np.array([[100.0, 101.0]], dtype=ref_dtype)]),
        np.concatenate([ft, np.ones((1, 4), np.float32)]),
    )
    seqs["ref"] = CompSeq.from_dict("ref", data)
    for j, (dt, shape) in enumerate(zip(other_dtypes * 2, dims)):
        data = {}
        for v in vids[: 4 if j == 0 else 5]:  # the last video is missing from one sequence: unify drops it
            n = int(rng.integers(0, 30))
            iv = _intervals(rng, n, span, dt, "frames" if j % 2 else "words")
            if shuffle and n:
                perm = rng.permutation(n)
                iv = iv[perm]
            data[v] = (iv, _features(rng, n, shape, np.float64 if j == 1 else np.float32))
        seqs[f"s{j}"] = CompSeq.from_dict(f"s{j}", data)
    return seqs


def _assert_same(ours: dict[str, CompSeq], ref: dict, one_column=("s1",)):
    """Keys, row order and intervals exactly; features exactly unless the source has one column (``one_column``:
    numpy sums a single column pairwise, not row by row)."""
    assert list(ours) == list(ref)
    for name in ref:
        assert list(ours[name].keys()) == list(ref[name].keys()), name
        for key, (iv, ft) in ref[name].items():
            got = ours[name][key]
            assert got.intervals.dtype == iv.dtype, (name, key)
            np.testing.assert_array_equal(got.intervals, iv, err_msg=f"{name} {key}")
            assert got.features.shape == ft.shape, (name, key)
            if name not in one_column:
                np.testing.assert_array_equal(got.features, ft, err_msg=f"{name} {key}")
            else:
                np.testing.assert_allclose(got.features, ft, rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")


def _dicts(seqs):
    return {n: dict(s.to_dict()) for n, s in seqs.items()}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("collapse", [("mean",), ("mean", "sum", "min", "max"), None])
def test_align_matches_oracle(seed, collapse):
    seqs = _case(seed)
    ours = align("ref", seqs, collapse=collapse)
    ref = oracle.align("ref", _dicts(seqs), collapse=collapse)
    _assert_same(ours, ref)
    assert all(len(s) > 0 for s in ours.values())


@pytest.mark.parametrize("seed", range(6))
def test_float32_reference_and_candidates(seed):
    seqs = _case(100 + seed, ref_dtype=np.float32, other_dtypes=(np.float32, np.float32))
    ours = align("ref", seqs, collapse=("mean", "max"))
    _assert_same(ours, oracle.align("ref", _dicts(seqs), collapse=("mean", "max")))
    assert ours["s0"].intervals.dtype == np.float32


@pytest.mark.parametrize("seed", range(6))
def test_mixed_interval_dtypes(seed):
    seqs = _case(200 + seed, ref_dtype=np.float32, other_dtypes=(np.float64, np.float32))
    for collapse in (("mean",), None):
        _assert_same(align("ref", seqs, collapse=collapse), oracle.align("ref", _dicts(seqs), collapse=collapse))


def test_eps_boundaries_by_hand():
    # reference [1, 2]; candidates touching, overlapping by just under / over eps, zero-length and inverted
    ref = CompSeq.from_dict(
        "ref", {"v": (np.array([[1.0, 2.0], [3.0, 3.0 + 0.9e-5], [5.0, 5.0 + 1.1e-5]]), np.zeros((3, 2)))}
    )
    cand_iv = np.array(
        [
            [0.0, 1.0],  # touches the start: overlaps, but clips to zero length -> dropped
            [0.0, 1.0 + 0.9e-5],  # clip length 0.9e-5 <= eps -> dropped
            [0.0, 1.0 + 1.1e-5],  # clip length 1.1e-5 > eps -> kept
            [2.0 - 2e-5, 2.5],  # kept, clipped to [2 - 2e-5, 2]
            [1.5, 1.5],  # zero-length -> dropped
            [1.8, 1.2],  # inverted, overlaps -> kept as clipped [1.8, 1.2]
            [2.0 + 0.9e-5, 3.0],  # starts just under eps after the end: overlaps, clip inverted & tiny -> dropped
            [4.99, 5.2],
        ]
    )
    feats = np.arange(16, dtype=np.float64).reshape(8, 2)
    other = CompSeq.from_dict("x", {"v": (cand_iv, feats)})
    out = align("ref", {"ref": ref, "x": other}, collapse=None)
    assert list(out["x"].keys()) == ["v[0]", "v[2]"]  # row 1 is shorter than eps: skipped everywhere
    assert list(out["ref"].keys()) == ["v[0]", "v[2]"]
    iv, ft = out["x"]["v[0]"]
    np.testing.assert_array_equal(iv, [[1.0, 1.0 + 1.1e-5], [1.8, 1.2], [2.0 - 2e-5, 2.0]])
    np.testing.assert_array_equal(ft, feats[[2, 5, 3]])
    ref_oracle = oracle.align("ref", _dicts({"ref": ref, "x": other}), collapse=None)
    _assert_same(out, ref_oracle)
    collapsed = align("ref", {"ref": ref, "x": other})
    np.testing.assert_array_equal(collapsed["x"]["v[0]"].intervals, [[1.0, 2.0]])
    np.testing.assert_array_equal(collapsed["x"]["v[0]"].features, [feats[[2, 5, 3]].mean(axis=0)])


def test_nan_propagates_and_nan_intervals_never_match():
    ref = CompSeq.from_dict("ref", {"v": (np.array([[0.0, 1.0], [np.nan, 2.0]]), np.zeros((2, 2)))})
    other = CompSeq.from_dict(
        "x",
        {
            "v": (
                np.array([[0.0, 0.5], [0.5, 1.0], [np.nan, 0.7], [0.2, np.nan]]),
                np.array([[1.0, np.nan], [-np.inf, 2.0], [5.0, 5.0], [7.0, 7.0]]),
            )
        },
    )
    out = align("ref", {"ref": ref, "x": other})
    assert list(out["x"].keys()) == ["v[0]"]
    np.testing.assert_array_equal(out["x"]["v[0]"].features, [[-np.inf, np.nan]])
    # a NaN reference row is not skipped by abs(r0 - r1) < eps: the reference keeps a key, with a NaN interval
    assert list(out["ref"].keys()) == ["v[0]", "v[1]"]
    assert np.isnan(out["ref"]["v[1]"].intervals).all()
    _assert_same(out, oracle.align("ref", _dicts({"ref": ref, "x": other})))


def test_candidates_from_several_entries_of_a_video_are_merged_stably():
    # aligned sequences (keys vid[i]) used as candidates: entries of one video concatenated, then stable-sorted
    ref = CompSeq.from_dict("lab", {"v": (np.array([[0.0, 10.0]]), np.ones((1, 1)))})
    other = CompSeq.from_dict(
        "w",
        {
            "v[2]": (np.array([[3.0, 4.0]]), np.array([[2.0, 2.0]])),
            "v[0]": (np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])),
            "v[1]": (np.array([[1.0, 3.0]]), np.array([[1.0, 1.0]])),
        },
    )
    out = align("lab", {"lab": ref, "w": other}, collapse=None)
    np.testing.assert_array_equal(out["w"]["v[0]"].features[:, 0], [0.0, 1.0, 2.0])
    _assert_same(out, oracle.align("lab", _dicts({"lab": ref, "w": other}), collapse=None))


def test_unify_hard_unify_impute_match_oracle():
    seqs = _case(7)
    assert "vid4" not in set(unify(seqs)["ref"].videos)
    ours = align("ref", seqs)
    theirs = oracle.align("ref", _dicts(seqs))
    _assert_same(impute("ref", ours), oracle.impute("ref", theirs))
    hu = hard_unify(ours)
    keysets = {tuple(s.keys()) for s in hu.values()}
    assert len(keysets) == 1
    _assert_same(hu, oracle.hard_unify(theirs))


def test_unsorted_large_group_uses_stable_sort():
    rng = np.random.default_rng(5)
    n = 400
    start = rng.integers(0, 50, size=n) * 0.1
    iv = np.stack([start, start + rng.integers(1, 4, size=n) * 0.1], axis=1)
    other = CompSeq.from_dict("x", {"v": (iv, rng.standard_normal((n, 3)))})
    ref = CompSeq.from_dict("ref", {"v": (np.array([[0.0, 1.0], [0.55, 2.05], [4.0, 4.3]]), np.zeros((3, 1)))})
    for collapse in (("mean",), None):
        _assert_same(
            align("ref", {"ref": ref, "x": other}, collapse=collapse),
            oracle.align("ref", _dicts({"ref": ref, "x": other}), collapse=collapse),
        )
