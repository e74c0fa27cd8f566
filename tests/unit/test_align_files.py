"""align_files: the file-by-file loop behind `mfm-bench align` and prepare_word_level gives align()'s results."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from mfm_bench.align import AlignError, CSDMetadataWarning, align, align_files, impute, read_csd, write_csd
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


@pytest.mark.parametrize("budget", [1, 4000, 10**9])
def test_a_file_collapsed_in_parts_gives_the_whole_files_result(raw_and_files, tmp_path, monkeypatch, budget):
    """Above STREAM_BYTES a collapsed file is read and aligned a few videos at a time into one buffer (a part per
    video at 1 byte, several videos a part at 4,000); the result is align()'s, byte for byte. The other file's
    entries are in another order than the reference's, and a second case uses an aligned reference (several
    entries per video) and an aligned file (several entries per video) as the file collapsed."""
    from mfm_bench.align import pipeline

    seqs, files = raw_and_files
    acoustic = seqs["acoustic"]
    files = dict(files, acoustic=str(write_csd(tmp_path / "rev.csd", acoustic.select(np.arange(len(acoustic))[::-1]))))
    expected = align("words", seqs, collapse=("mean", "max"))
    monkeypatch.setattr(pipeline, "STREAM_BYTES", budget)
    parts = []
    real = pipeline._align_other
    monkeypatch.setattr(pipeline, "_align_other", lambda ref, *a: parts.append(len(ref.seq)) or real(ref, *a))
    got = dict(align_files(files, "words", ("mean", "max")))
    for name in seqs:
        _same(got[name], expected[name])
    if budget == 10**9:
        assert parts == [len(seqs["words"])] * 3  # small files are read whole
    else:
        assert len(parts) > 3 and sum(parts) == 3 * len(seqs["words"])
    # aligned to labels: entries vid[k] on both sides; the reference file keeps its entries in creation order,
    # interleaved across videos (a video's entries not consecutive), and "sum" would count a candidate read twice
    by_label = align("labels", seqs, collapse=None)
    ref = by_label["labels"]
    video = sorted(set(ref.videos)).index
    step = [int(k.split("[")[1].rstrip("]")) for k in ref.keys_list]
    # pairs of videos interleaved: v0[0], v1[0], v0[1], v1[1], ..., then v2 and v3 likewise
    order = sorted(range(len(ref)), key=lambda e: (video(ref.videos[e]) // 2, step[e], video(ref.videos[e])))
    names = {"labels": str(tmp_path / "l_labels.csd")}
    with h5py.File(names["labels"], "w") as h5:
        data = h5.create_group("labels").create_group("data", track_order=True)
        for e in order:
            g = data.create_group(ref.keys_list[e])
            g["intervals"], g["features"] = ref[ref.keys_list[e]]
    names["acoustic"] = str(write_csd(tmp_path / "l_acoustic.csd", by_label["acoustic"]))
    with pytest.warns(CSDMetadataWarning):
        ref = read_csd(names["labels"])
    runs = 1 + sum(a != b for a, b in zip(ref.videos, ref.videos[1:]))
    assert runs > len(set(ref.videos))  # some video's entries are not consecutive
    expected = align("labels", {"labels": ref, "acoustic": by_label["acoustic"]}, collapse=("mean", "sum"))
    a = by_label["acoustic"]
    size = a.intervals.nbytes + a.features.nbytes
    monkeypatch.setattr(pipeline, "STREAM_BYTES", size // 2)  # parts of a few videos, each seen several times
    parts.clear()
    with pytest.warns(CSDMetadataWarning):
        got = dict(align_files(names, "labels", ("mean", "sum")))
    assert len(parts) >= 2
    _same(got["acoustic"], expected["acoustic"])


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
