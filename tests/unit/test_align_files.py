"""align_files: the file-by-file loop behind `mfm-bench align` and prepare_word_level gives align()'s results."""

from __future__ import annotations

import numpy as np
import pytest

from mfm_bench.align import AlignError, align, align_files, impute, write_csd
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences


@pytest.fixture(scope="module")
def raw_and_files(tmp_path_factory):
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=6, seed=11))
    d = tmp_path_factory.mktemp("files")
    return seqs, {name: str(write_csd(d / f"{name}.csd", s)) for name, s in seqs.items()}


def _same(a, b):
    assert a.name == b.name and a.keys_list == b.keys_list
    assert np.array_equal(a.offsets, b.offsets)
    assert a.intervals.dtype == b.intervals.dtype and a.intervals.tobytes() == b.intervals.tobytes()
    assert a.features.dtype == b.features.dtype and a.features.tobytes() == b.features.tobytes()


@pytest.mark.parametrize("collapse", [("mean",), ("mean", "max"), None])
def test_align_files_matches_align_in_memory(raw_and_files, collapse):
    seqs, files = raw_and_files
    expected = align("words", seqs, collapse=collapse)
    got = list(align_files(files, "words", collapse))
    assert [n for n, _ in got] == list(files)  # paths order, reference included
    for name, seq in got:
        _same(seq, expected[name])


def test_align_files_skip_and_impute(raw_and_files):
    seqs, files = raw_and_files
    aligned = align("words", {n: s for n, s in seqs.items() if n != "labels"})
    expected = impute("words", aligned)
    got = dict(align_files(files, "words", skip=["labels"], impute_missing=True))
    assert list(got) == [n for n in files if n != "labels"]
    for name, seq in got.items():
        _same(seq, expected[name])


def test_align_files_errors(raw_and_files, tmp_path):
    _, files = raw_and_files
    with pytest.raises(AlignError, match="'nope' is not among"):
        next(align_files(files, "nope"))
    with pytest.raises(AlignError, match="unknown collapse"):
        next(align_files(files, "words", ["median"]))
    with pytest.raises(AlignError, match="no video id is shared"):
        next(align_files(files, "words", videos=set()))


def test_a_file_aligned_before_is_matched_by_video(raw_and_files, tmp_path):
    """An aligned file's entries are ``vid[k]``; read back, they are candidates of video ``vid`` (mmsdk strips the
    key the same way), so aligning a saved word-level file to the labels gives align()'s result."""
    seqs, files = raw_and_files
    words = align("words", seqs)
    saved = {"labels": files["labels"], "acoustic": str(write_csd(tmp_path / "a.csd", words["acoustic"]))}
    expected = align("labels", {"labels": seqs["labels"], "acoustic": words["acoustic"]}, collapse=None)
    got = dict(align_files(saved, "labels", None))
    assert len(expected["acoustic"]) > 0
    _same(got["acoustic"], expected["acoustic"])
