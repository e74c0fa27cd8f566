"""Numba kernels of the word-level alignment (see docs/align.md for the rules they implement).

Every kernel works on a batch of "groups": group ``v`` pairs the reference rows ``ref_off[v]:ref_off[v + 1]`` with
the candidate rows of the same video, given as row ranges ``seg_start[s]:seg_end[s]`` for
``s in seg_ptr[v]:seg_ptr[v + 1]`` (one range per candidate entry, in entry order). Per group the candidates are
stable-sorted by start (skipped when already sorted), and each reference row finds its overlapping candidates by two
binary searches: the candidates whose start is early enough form a prefix of the sorted list, and a running maximum
of the ends tells where the first candidate that ends late enough can be. Only the rows between the two bounds are
examined, so the work is linear in rows plus output for the usual CMU data (frames and words that do not nest).

Comparisons are made in the intervals' dtype: the caller passes ``eps`` as a scalar of that dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MEAN, SUM, MIN, MAX = 0, 1, 2, 3
COLLAPSE_CODES = {"mean": MEAN, "sum": SUM, "min": MIN, "max": MAX}


@njit(cache=True)
def _group_candidates(cand_iv, seg_start, seg_end, s_lo, s_hi):
    """Rows of one group's candidates, stable-sorted by start; NaN starts dropped (they can never overlap).

    Returns (rows, starts, ends, running max of ends), all in sorted order.
    """
    n = 0
    for s in range(s_lo, s_hi):
        n += seg_end[s] - seg_start[s]
    rows = np.empty(n, np.int64)
    k = 0
    for s in range(s_lo, s_hi):
        for r in range(seg_start[s], seg_end[s]):
            if not np.isnan(cand_iv[r, 0]):
                rows[k] = r
                k += 1
    rows = rows[:k]
    in_order = True
    for j in range(k - 1):
        if cand_iv[rows[j + 1], 0] < cand_iv[rows[j], 0]:
            in_order = False
            break
    if not in_order:
        starts = np.empty(k, cand_iv.dtype)
        for j in range(k):
            starts[j] = cand_iv[rows[j], 0]
        rows = rows[np.argsort(starts, kind="mergesort")]  # stable, like mmsdk's sorted()
    s0 = np.empty(k, cand_iv.dtype)
    s1 = np.empty(k, cand_iv.dtype)
    pmax = np.empty(k, cand_iv.dtype)
    run = -np.inf
    for j in range(k):
        a = cand_iv[rows[j], 0]
        b = cand_iv[rows[j], 1]
        s0[j] = a
        s1[j] = b
        if b > run:  # a NaN end never raises the running maximum
            run = b
        pmax[j] = run
    return rows, s0, s1, pmax


@njit(cache=True)
def _bounds(s0, pmax, r0, r1, neps):
    """[lo, hi): the only sorted candidates that may overlap (r0, r1)."""
    lo = 0
    hi = s0.shape[0]
    while lo < hi:  # first index whose start is too late: (r1 - s0) > -eps fails
        mid = (lo + hi) >> 1
        if (r1 - s0[mid]) > neps:
            lo = mid + 1
        else:
            hi = mid
    end = lo
    lo = 0
    hi = end
    while lo < hi:  # first index whose running max of ends satisfies (s1 - r0) > -eps
        mid = (lo + hi) >> 1
        if (pmax[mid] - r0) > neps:
            hi = mid
        else:
            lo = mid + 1
    return lo, end


@njit(parallel=True, cache=True)
def align_collapse(
    ref_iv, ref_off, skip, cand_iv, seg_start, seg_end, seg_ptr, feats, funcs, eps, out_iv, out_ft, count
):
    """Collapsed alignment: one output row per reference row (``count[i]`` kept candidates, 0 means no key).

    ``feats`` is (M, D) in the accumulation dtype; ``out_ft`` is (N, len(funcs) * D); ``out_iv`` (N, 2).
    Sums (for mean and sum), minima and maxima accumulate row by row in sorted order, starting from the first kept
    row, as numpy's reduction along axis 0 of a C-contiguous (n, D >= 2) array does; min and max propagate NaN.
    """
    neps = -eps
    n_groups = ref_off.shape[0] - 1
    D = feats.shape[1]
    F = funcs.shape[0]
    need_sum = False
    need_min = False
    need_max = False
    for f in range(F):
        if funcs[f] == MEAN or funcs[f] == SUM:
            need_sum = True
        elif funcs[f] == MIN:
            need_min = True
        else:
            need_max = True
    for v in prange(n_groups):
        rows, s0, s1, pmax = _group_candidates(cand_iv, seg_start, seg_end, seg_ptr[v], seg_ptr[v + 1])
        acc = np.empty(D, feats.dtype)
        mn = np.empty(D, feats.dtype)
        mx = np.empty(D, feats.dtype)
        for i in range(ref_off[v], ref_off[v + 1]):
            count[i] = 0
            if skip[i]:
                continue
            r0 = ref_iv[i, 0]
            r1 = ref_iv[i, 1]
            lo, hi = _bounds(s0, pmax, r0, r1, neps)
            n = 0
            for k in range(lo, hi):
                a = s0[k]
                b = s1[k]
                if not ((b - r0) > neps):
                    continue
                c0 = a if a > r0 else r0
                c1 = b if b < r1 else r1
                if not (abs(c0 - c1) > eps):
                    continue
                lo_c = c0 if c0 < c1 else c1
                hi_c = c1 if c0 < c1 else c0
                x = feats[rows[k]]
                if n == 0:
                    out_iv[i, 0] = lo_c
                    out_iv[i, 1] = hi_c
                    if need_sum:
                        acc[:] = x
                    if need_min:
                        mn[:] = x
                    if need_max:
                        mx[:] = x
                else:
                    if lo_c < out_iv[i, 0]:
                        out_iv[i, 0] = lo_c
                    if hi_c > out_iv[i, 1]:
                        out_iv[i, 1] = hi_c
                    if need_sum:
                        for c in range(D):
                            acc[c] += x[c]
                    if need_min:
                        for c in range(D):
                            if not np.isnan(mn[c]) and (np.isnan(x[c]) or x[c] < mn[c]):
                                mn[c] = x[c]
                    if need_max:
                        for c in range(D):
                            if not np.isnan(mx[c]) and (np.isnan(x[c]) or x[c] > mx[c]):
                                mx[c] = x[c]
                n += 1
            count[i] = n
            if n == 0:
                continue
            for f in range(F):
                o = out_ft[i, f * D : (f + 1) * D]
                code = funcs[f]
                if code == MEAN:
                    if n == 1:
                        o[:] = acc
                    else:
                        for c in range(D):
                            o[c] = acc[c] / n
                elif code == SUM:
                    o[:] = acc
                elif code == MIN:
                    o[:] = mn
                else:
                    o[:] = mx


@njit(parallel=True, cache=True)
def align_count(ref_iv, ref_off, skip, cand_iv, seg_start, seg_end, seg_ptr, eps, count):
    """Uncollapsed alignment, pass 1: how many candidates each reference row keeps."""
    neps = -eps
    n_groups = ref_off.shape[0] - 1
    for v in prange(n_groups):
        rows, s0, s1, pmax = _group_candidates(cand_iv, seg_start, seg_end, seg_ptr[v], seg_ptr[v + 1])
        for i in range(ref_off[v], ref_off[v + 1]):
            count[i] = 0
            if skip[i]:
                continue
            r0 = ref_iv[i, 0]
            r1 = ref_iv[i, 1]
            lo, hi = _bounds(s0, pmax, r0, r1, neps)
            n = 0
            for k in range(lo, hi):
                a = s0[k]
                b = s1[k]
                if (b - r0) > neps:
                    c0 = a if a > r0 else r0
                    c1 = b if b < r1 else r1
                    if abs(c0 - c1) > eps:
                        n += 1
            count[i] = n


@njit(parallel=True, cache=True)
def align_fill(ref_iv, ref_off, skip, cand_iv, seg_start, seg_end, seg_ptr, eps, out_off, out_iv, out_src):
    """Uncollapsed alignment, pass 2: the clipped intervals and source rows, at ``out_off[i]`` for reference row i."""
    neps = -eps
    n_groups = ref_off.shape[0] - 1
    for v in prange(n_groups):
        rows, s0, s1, pmax = _group_candidates(cand_iv, seg_start, seg_end, seg_ptr[v], seg_ptr[v + 1])
        for i in range(ref_off[v], ref_off[v + 1]):
            if skip[i]:
                continue
            r0 = ref_iv[i, 0]
            r1 = ref_iv[i, 1]
            lo, hi = _bounds(s0, pmax, r0, r1, neps)
            p = out_off[i]
            for k in range(lo, hi):
                a = s0[k]
                b = s1[k]
                if (b - r0) > neps:
                    c0 = a if a > r0 else r0
                    c1 = b if b < r1 else r1
                    if abs(c0 - c1) > eps:
                        out_iv[p, 0] = c0
                        out_iv[p, 1] = c1
                        out_src[p] = rows[k]
                        p += 1


@njit(cache=True)
def compact_rows(arr, rows):
    """``arr[:len(rows)] = arr[rows]`` in place, for increasing ``rows`` (so ``rows[j] >= j``): no new array."""
    for j in range(rows.shape[0]):
        r = rows[j]
        if r != j:
            arr[j] = arr[r]
