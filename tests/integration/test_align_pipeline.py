"""The whole word-level pipeline (files -> words -> segments -> tensors) against the oracle, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from mfm_bench.align import (
    AlignError,
    CompSeq,
    align,
    get_tensors,
    hard_unify,
    impute,
    nan_to_num,
    oracle,
    prepare_word_level,
    read_csd,
    write_csd,
)
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences, standard_folds
from mfm_bench.cli import main


@pytest.fixture(scope="module")
def raw():
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=10, seed=3))
    # a video only the words have: dropped by unify at both stages
    w = seqs["words"]
    extra = CompSeq.from_dict(
        "words", {"lonely": (np.array([[0.0, 1.0]]), np.ones((1, w.feature_shape[0]), w.features.dtype))}
    )
    seqs["words"] = CompSeq(
        w.name,
        w.keys_list + ["lonely"],
        np.append(w.offsets, w.offsets[-1] + 1),
        np.concatenate([w.intervals, extra.intervals]),
        np.concatenate([w.features, extra.features]),
        w.metadata,
    )
    return seqs


@pytest.fixture(scope="module")
def files(raw, tmp_path_factory):
    d = tmp_path_factory.mktemp("csd")
    return {name: str(write_csd(d / f"{name}.csd", s)) for name, s in raw.items()}


def _oracle_pipeline(raw, folds, seq_len):
    d = {n: dict(s.to_dict()) for n, s in raw.items()}
    labels = d.pop("labels")
    words = oracle.impute("words", oracle.align("words", d, collapse=("mean",)))
    stage = oracle.align("labels", {**words, "labels": labels}, collapse=None)
    return oracle.get_tensors(stage, seq_len, folds, non_sequences=["labels"])


def test_prepare_word_level_matches_oracle(raw, files):
    folds = standard_folds([v for v in raw["labels"].keys()], seed=1)
    ours = prepare_word_level(files, "words", "labels", 6, folds)
    theirs = _oracle_pipeline(raw, folds, 6)
    assert list(ours) == ["train", "valid", "test"]
    total = 0
    for fold in folds:
        assert set(ours[fold]) == {"words", "acoustic", "visual", "labels", "ids"}
        np.testing.assert_array_equal(ours[fold]["ids"], theirs[fold]["ids"])
        for name in ("words", "acoustic", "visual"):
            assert ours[fold][name].shape == theirs[fold][name].shape
            assert ours[fold][name].dtype == np.float64
            np.testing.assert_array_equal(ours[fold][name], theirs[fold][name])
        np.testing.assert_array_equal(ours[fold]["labels"], theirs[fold]["labels"])
        assert ours[fold]["labels"].ndim == 2
        total += len(ours[fold]["ids"])
    assert total > 5
    # COVAREP-like NaN / -inf survive the pipeline until nan_to_num
    acoustic = np.concatenate([ours[f]["acoustic"] for f in folds])
    assert not np.isfinite(acoustic).all()
    assert np.isfinite(nan_to_num(ours)["train"]["acoustic"]).all()


def test_modalities_can_have_different_row_counts(raw):
    # a word crossing a segment boundary is clipped; a frame average inside the word may then fall outside
    words = CompSeq.from_dict("words", {"v": (np.array([[0.0, 1.0], [1.0, 2.0]]), np.ones((2, 2)))})
    frames = CompSeq.from_dict("a", {"v": (np.array([[0.0, 0.4], [1.5, 2.0]]), np.ones((2, 2)))})
    labels = CompSeq.from_dict("labels", {"v": (np.array([[0.5, 2.0]]), np.array([[1.0]]))})
    wl = align("words", {"words": words, "a": frames})
    stage = hard_unify(align("labels", {**wl, "labels": labels}, collapse=None))
    assert stage["words"]["v[0]"].intervals.shape[0] == 2
    assert stage["a"]["v[0]"].intervals.shape[0] == 1


def test_get_tensors_left_pads_and_keeps_last_steps():
    a = CompSeq.from_dict(
        "a",
        {
            "v[0]": (np.arange(10.0).reshape(5, 2), np.arange(10.0).reshape(5, 2)),
            "w[0]": (np.zeros((1, 2)), np.full((1, 2), 7.0)),
        },
    )
    lab = CompSeq.from_dict(
        "lab", {"v[0]": (np.zeros((1, 2)), np.array([[1.5]])), "w[0]": (np.zeros((1, 2)), np.array([[-1.0]]))}
    )
    t = get_tensors({"a": a, "lab": lab}, 3, {"train": ["v"], "test": ["w"]}, non_sequences=["lab"])
    np.testing.assert_array_equal(t["train"]["a"][0], [[4, 5], [6, 7], [8, 9]])
    np.testing.assert_array_equal(t["test"]["a"][0], [[0, 0], [0, 0], [7, 7]])
    np.testing.assert_array_equal(t["train"]["lab"], [[1.5]])
    assert list(t["test"]["ids"]) == ["w[0]"]
    with pytest.warns(UserWarning, match="no fold"):
        t = get_tensors({"a": a, "lab": lab}, 3, {"train": ["v"]}, non_sequences=["lab"])
    assert t["train"]["a"].shape == (1, 3, 2)


def test_errors_are_clear(raw):
    with pytest.raises(AlignError, match="reference sequence 'nope'"):
        align("nope", {"words": raw["words"]})
    with pytest.raises(AlignError, match="unknown collapse"):
        align("words", {"words": raw["words"]}, collapse=("median",))


def test_impute_fills_missing_keys_with_zeros():
    ref = CompSeq.from_dict(
        "r", {"v[0]": (np.array([[0.0, 1.0]]), np.ones((1, 1))), "v[1]": (np.array([[1.0, 2.0]]), np.ones((1, 1)))}
    )
    other = CompSeq.from_dict("o", {"v[1]": (np.array([[1.2, 1.8]]), np.full((1, 3), 5.0, np.float32))})
    out = impute("r", {"r": ref, "o": other})["o"]
    assert list(out.keys()) == ["v[1]", "v[0]"]  # appended after the existing entries, as mmsdk's dict does
    np.testing.assert_array_equal(out["v[0]"].intervals, [[0.0, 1.0]])
    np.testing.assert_array_equal(out["v[0]"].features, np.zeros((1, 3)))


# -- command line -----------------------------------------------------------------------------------------------
def test_cli_align_writes_mmsdk_layout(raw, files, tmp_path):
    args = ["align", "--reference", "words", "--out", str(tmp_path / "al"), "--no-progress", "--impute"]
    args += [f"{n}={files[n]}" for n in ("words", "acoustic", "visual")]
    assert main(args) == 0
    got = {n: read_csd(tmp_path / "al" / f"{n}.csd") for n in ("words", "acoustic", "visual")}
    expected = impute("words", align("words", {n: raw[n] for n in ("words", "acoustic", "visual")}))
    for n in got:
        assert got[n].name == n
        assert set(got[n].keys()) == set(expected[n].keys())
        assert all("[" in k for k in got[n].keys())
        for k in expected[n]:
            np.testing.assert_array_equal(got[n][k].features, expected[n][k].features)
            np.testing.assert_array_equal(got[n][k].intervals, expected[n][k].intervals)


def test_cli_prepare(raw, files, tmp_path, capsys):
    folds = standard_folds(list(raw["labels"].keys()), seed=2)
    fpath = tmp_path / "folds.json"
    fpath.write_text(json.dumps(folds))
    out = tmp_path / "t.npz"
    args = [
        "prepare",
        "--words",
        "words",
        "--labels",
        "labels",
        "--seq-len",
        "4",
        "--folds",
        str(fpath),
        "--out",
        str(out),
        "--no-progress",
        "--nan-to-num",
    ] + [f"{n}={p}" for n, p in files.items()]
    assert main(args) == 0
    with np.load(out) as z:
        assert {"train/words", "train/acoustic", "train/ids", "test/labels"} <= set(z.files)
        n = len(z["train/ids"])
        assert z["train/acoustic"].shape == (n, 4, raw["acoustic"].feature_shape[0])
        assert z["train/labels"].shape == (n, 1)
        assert np.isfinite(z["train/acoustic"]).all()
    assert "train:" in capsys.readouterr().out


def test_cli_reports_bad_input(files, tmp_path, capsys):
    assert main(["align", "--reference", "words", "--out", str(tmp_path), f"acoustic={files['acoustic']}"]) == 2
    assert "--reference 'words'" in capsys.readouterr().err
    assert main(["align", "--reference", "w", "--out", str(tmp_path), f"w={tmp_path / 'missing.csd'}"]) == 2
    assert "missing.csd" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a usage error from the parser, before anything is read
        main(
            [
                "align",
                "--reference",
                "words",
                "--out",
                str(tmp_path),
                "--write-workers",
                "-1",
                f"words={files['words']}",
            ]
        )
    assert usage.value.code == 2 and "argument --write-workers: takes a number of processes" in capsys.readouterr().err
    bad = tmp_path / "folds.json"
    bad.write_text("[1, 2]")
    args = [
        "prepare",
        "--words",
        "words",
        "--labels",
        "labels",
        "--folds",
        str(bad),
        "--out",
        str(tmp_path / "x.npz"),
        "--no-progress",
    ] + [f"{n}={p}" for n, p in files.items()]
    assert main(args) == 2
    assert "folds must be a JSON object" in capsys.readouterr().err


@pytest.mark.parametrize("vlen", [False, True])
def test_word_tokens_as_the_reference(raw, tmp_path, vlen):
    # the dataset plugins pass TimestampedWords (tokens) as `words` and the word vectors as a modality
    vec = raw["words"]
    tokens = np.array([[f"w{i % 97}".encode()] for i in range(vec.n_rows)])
    words = vec.replace(name="words", features=tokens.astype(object) if vlen else tokens)
    paths = {
        "words": tmp_path / "tokens.csd",
        "text": tmp_path / "vectors.csd",
        "acoustic": tmp_path / "a.csd",
        "labels": tmp_path / "l.csd",
    }
    write_csd(paths["words"], words)  # object tokens become variable-length HDF5 strings
    write_csd(paths["text"], vec.replace(name="text"))
    write_csd(paths["acoustic"], raw["acoustic"])
    write_csd(paths["labels"], raw["labels"])
    folds = standard_folds(list(raw["labels"].keys()), seed=4)
    ours = prepare_word_level(paths, "words", "labels", 5, folds)
    # the same as aligning to the word vectors themselves (same intervals), which the oracle can average
    theirs = _oracle_pipeline({"words": vec, "acoustic": raw["acoustic"], "labels": raw["labels"]}, folds, 5)
    for fold in folds:
        np.testing.assert_array_equal(ours[fold]["ids"], theirs[fold]["ids"])
        np.testing.assert_array_equal(ours[fold]["text"], theirs[fold]["words"])
        np.testing.assert_array_equal(ours[fold]["acoustic"], theirs[fold]["acoustic"])
        tok = ours[fold]["words"]
        assert tok.shape[:2] == (len(ours[fold]["ids"]), 5) and tok.dtype.kind in "SO"
        assert any(t.startswith(b"w") for t in tok.reshape(-1))
    with pytest.raises(AlignError, match="not numbers"):
        align("text", {"text": vec, "words": words})


def test_dataset_plugin_glue_end_to_end(raw, files, tmp_path):
    # mfm_bench.data.csd (the CMU dataset plugins) calls prepare_word_level with word tokens as `words`
    from mfm_bench.data.csd import read_csd_splits

    vec = raw["words"]
    tokens = np.array([[b"tok"]] * vec.n_rows)
    write_csd(tmp_path / "tokens.csd", vec.replace(name="words", features=tokens))
    write_csd(tmp_path / "vectors.csd", vec.replace(name="text"))
    names = {
        "words": "tokens.csd",
        "text": "vectors.csd",
        "audio": files["acoustic"],
        "visual": files["visual"],
        "labels": files["labels"],
    }
    folds = standard_folds(list(raw["labels"].keys()), seed=5)
    splits = read_csd_splits(tmp_path, names, ["text", "audio", "visual"], 7, folds)
    n = len(splits["train"]["ids"])
    assert n > 0
    assert splits["train"]["inputs"]["audio"].shape == (n, 7, raw["acoustic"].feature_shape[0])
    assert splits["train"]["inputs"]["text"].dtype == np.float32
    assert np.isfinite(splits["train"]["inputs"]["audio"]).all()
    assert splits["train"]["labels"].shape == (n, 1)
    assert splits["train"]["mask"]["text"].any()


def test_cli_align_never_replaces_a_file_it_did_not_write(files, tmp_path, capsys):
    out = tmp_path / "al"
    out.mkdir()
    (out / "acoustic.csd").write_text("someone else's file")
    args = ["align", "--reference", "words", "--out", str(out), "--no-progress", "--write-workers", "0"]
    args += [f"{n}={files[n]}" for n in ("words", "acoustic")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        f"--out {out}: {out / 'acoustic.csd'} already exists and was not written there by mfm-bench align (or "
        "changed since); pass --overwrite to replace it, or give --out another folder"
    ) in err, err
    # refused before anything was read or written
    assert sorted(p.name for p in out.iterdir()) == ["acoustic.csd"]
    assert (out / "acoustic.csd").read_text() == "someone else's file"
    assert main([*args, "--overwrite"]) == 0
    assert read_csd(out / "acoustic.csd").name == "acoustic"
    capsys.readouterr()
    # its own output, unchanged since, is rewritten by a second run without --overwrite (after an interruption,
    # or with other options), and so is one of the two when the other is new
    assert main(args) == 0
    assert main([*args, f"visual={files['visual']}"]) == 0
    assert main([*args, f"visual={files['visual']}"]) == 0
    # one of its files changed since (here: another file put in its place) is someone else's again
    (out / "words.csd").write_bytes((out / "words.csd").read_bytes() + b"\0")
    capsys.readouterr()
    assert main(args) == 2
    assert f"{out / 'words.csd'} already exists" in capsys.readouterr().err
    # the same for --format npz, whose NAME.npz sit beside them
    (out / "words.npz").write_text("not an npz of ours")
    assert main([*args, "--format", "npz"]) == 2
    assert f"{out / 'words.npz'} already exists" in capsys.readouterr().err


SLOW_WRITE = """
import sys, time
import mfm_bench.align as align
from mfm_bench.io import atomic_path

def slow(path, seq):
    with atomic_path(path, suffix=".npz") as tmp:
        tmp.write_bytes(b"half")
        print("writing", flush=True)
        time.sleep(60)

align.write_npz = slow
from mfm_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_align_exits_128_plus_the_signal(files, tmp_path, sig, code):
    out = tmp_path / "out"
    args = ["align", "--no-progress", "--reference", "words", "--out", str(out), "--format", "npz"]
    args += ["--write-workers", "0", f"words={files['words']}", f"acoustic={files['acoustic']}"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code and "interrupted" in err, err
    assert list(out.iterdir()) == []  # the file being written is removed, and nothing was finished to record


def test_cli_align_refuses_compression_for_npz_before_reading(files, tmp_path, capsys, monkeypatch):
    import mfm_bench.align as align_module

    def no_reading(*args, **kwargs):
        raise AssertionError("read and aligned before refusing --compression with --format npz")

    monkeypatch.setattr(align_module, "align_files", no_reading)
    args = ["align", "--reference", "words", "--out", str(tmp_path / "al"), "--no-progress", "--format", "npz"]
    assert main([*args, "--compression", "gzip", f"words={files['words']}"]) == 2
    assert "--compression applies to --format csd" in capsys.readouterr().err
    assert not (tmp_path / "al").exists()
