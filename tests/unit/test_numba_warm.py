"""The session fixture in conftest.py has compiled every kernel signature the alignment tests use."""

from __future__ import annotations

from mfm_bench.align import CompSeq  # noqa: F401 - importing mfm_bench.align is what makes the session warm the kernels


def test_kernels_are_compiled_before_any_alignment_test_runs():
    from mfm_bench.align import kernels

    collapse = {(str(sig[0].dtype), str(sig[7].dtype)) for sig in kernels.align_collapse.signatures}
    assert collapse == {(a, b) for a in ("float32", "float64") for b in ("float32", "float64")}
    for fn in (kernels.align_count, kernels.align_fill, kernels.compact_rows):
        assert {str(sig[0].dtype) for sig in fn.signatures} == {"float32", "float64"}, fn
