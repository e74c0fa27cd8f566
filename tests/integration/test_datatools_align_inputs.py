"""`mfm-bench align` and `prepare` on input files that are not what they claim to be: one error line naming the
file, never a traceback from h5py."""

from __future__ import annotations

import json

import pytest

from mfm_bench.align import CSDFormatError, csd_entries, write_csd
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences
from mfm_bench.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("csd")
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=3, seed=1))
    return {name: write_csd(d / f"{name}.csd", s) for name, s in seqs.items()}


@pytest.fixture
def broken(files, tmp_path):
    """A truncated copy of a real .csd, a text file named .csd and a text file named .npz."""
    truncated = tmp_path / "truncated.csd"
    truncated.write_bytes(files["acoustic"].read_bytes()[:3000])
    text = tmp_path / "notes.csd"
    text.write_text("not hdf5\n")
    npz = tmp_path / "garbage.npz"
    npz.write_text("not a zip\n")
    return [truncated, text, npz]


def test_csd_entries_names_the_unreadable_file(broken):
    for path in broken:
        with pytest.raises(CSDFormatError, match=path.name):
            csd_entries(path)


def test_align_and_prepare_report_a_broken_input_in_one_line(files, broken, tmp_path, capsys):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["v00000"], "valid": ["v00001"], "test": ["v00002"]}))
    for path in broken:
        code = main(
            ["align", "--no-progress", "--reference", "words", "--out", str(tmp_path / "out"),
             f"words={files['words']}", f"acoustic={path}"]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and str(path) in err, err
        code = main(
            ["prepare", "--no-progress", "--words", "words", "--labels", "labels", "--folds", str(folds),
             "--out", str(tmp_path / "x.npz"), f"words={files['words']}", f"acoustic={path}",
             f"labels={files['labels']}"]
        )  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and str(path) in err, err
    assert not (tmp_path / "x.npz").exists()


def test_prepare_with_folds_that_match_no_video_writes_nothing(files, tmp_path, capsys):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["vid_1", "vid_2"], "valid": [], "test": []}))
    out = tmp_path / "x.npz"
    with pytest.warns(UserWarning, match="belong to no fold"):
        code = main(
            ["prepare", "--no-progress", "--words", "words", "--labels", "labels", "--folds", str(folds),
             "--out", str(out), f"words={files['words']}", f"labels={files['labels']}"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert f"{folds}: no labelled segment belongs to a fold" in err and "'vid_1'" in err and "'v00000'" in err


def test_collapse_none_with_a_function_is_named_as_the_conflict(files, tmp_path, capsys):
    code = main(
        ["align", "--no-progress", "--reference", "words", "--out", str(tmp_path / "out"), "--collapse", "none",
         "--collapse", "mean", f"words={files['words']}", f"acoustic={files['acoustic']}"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "'none' (keep every row) cannot be combined with collapse functions" in err, err
    assert "unknown collapse" not in err


def test_bad_out_paths_are_one_line_errors(files, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    seqs = [f"words={files['words']}", f"acoustic={files['acoustic']}"]
    for out, expected in [(a_file, "is a file, not a folder"), (a_file / "sub", "cannot create the folder")]:
        code = main(["align", "--no-progress", "--reference", "words", "--out", str(out), *seqs])
        err = capsys.readouterr().err
        assert code == 2 and f"--out {out}: {expected}" in err and "Traceback" not in err, err
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["v00000"], "valid": ["v00001"], "test": ["v00002"]}))
    base = ["prepare", "--no-progress", "--words", "words", "--labels", "labels", "--folds", str(folds)]
    labelled = [*seqs, f"labels={files['labels']}"]
    for out, expected in [(tmp_path, "is a folder; give the .npz file"), (a_file / "x.npz", "cannot write the file")]:
        code = main([*base, "--out", str(out), *labelled])
        err = capsys.readouterr().err
        assert code == 2 and f"--out {out}: {expected}" in err and "Traceback" not in err, err
    code = main([*base[:5], "words", *base[6:], "--out", str(tmp_path / "y.npz"), *seqs])
    assert code == 2 and "--words and --labels both name 'words'" in capsys.readouterr().err
    assert not (tmp_path / "y.npz").exists()


def test_prepare_refuses_collapse_none(files, tmp_path, capsys):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"train": ["v00000"], "valid": ["v00001"], "test": ["v00002"]}))
    out = tmp_path / "frames.npz"
    code = main(
        ["prepare", "--no-progress", "--collapse", "none", "--words", "words", "--labels", "labels", "--folds",
         str(folds), "--out", str(out), *(f"{n}={files[n]}" for n in ("words", "acoustic", "labels"))]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--collapse none keeps every frame" in err and not out.exists()
