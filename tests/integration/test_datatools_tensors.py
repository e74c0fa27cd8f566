"""`mfm-bench validate` on suites of the `tensors` dataset reads the file's meta.json: a condition naming a
sequence the file lacks, folds not named train/valid/test and an empty fold are errors before any run."""

from __future__ import annotations

import json

import pytest

from mfm_bench.align import write_csd
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences
from mfm_bench.cli import main

SUITE = """\
name: own
datasets:
  - name: tensors
    params: {{path: {path}, task: regression}}
models:
  - {{name: supervised, params: {{fusion: concat}}}}
seeds: [0]
train: {{epochs: 1, batch_size: 8, device: cpu}}
evaluate: {{conditions: [clean, {{missing: {missing}}}]}}
"""


@pytest.fixture(scope="module")
def csd(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=6, seed=2))
    for name, seq in seqs.items():
        write_csd(d / f"{name}.csd", seq)
    return d


def _prepare(csd, tmp_path, folds: dict) -> str:
    (tmp_path / "folds.json").write_text(json.dumps(folds))
    out = tmp_path / "own.npz"
    args = ["prepare", "--no-progress", "--words", "words", "--labels", "labels", "--seq-len", "6", "--folds"]
    args += [str(tmp_path / "folds.json"), "--out", str(out), "--nan-to-num"]
    args += [f"{n}={csd / n}.csd" for n in ("words", "acoustic", "visual", "labels")]
    assert main(args) == 0
    return str(out)


def _validate(tmp_path, path: str, missing: str = "acoustic") -> int:
    suite = tmp_path / "own.yaml"
    suite.write_text(SUITE.format(path=path, missing=missing))
    return main(["validate", str(suite)])


STANDARD = {"train": ["v00000", "v00001", "v00002", "v00003"], "valid": ["v00004"], "test": ["v00005"]}


def test_condition_on_a_sequence_the_file_lacks(csd, tmp_path, capsys):
    path = _prepare(csd, tmp_path, STANDARD)
    assert _validate(tmp_path, path) == 0
    capsys.readouterr()
    assert _validate(tmp_path, path, missing="acoustc") == 1
    err = capsys.readouterr().err
    assert "has no modality 'acoustc'" in err and "did you mean 'acoustic'" in err


def test_folds_not_named_train_valid_test(csd, tmp_path, capsys):
    folds = {"train": STANDARD["train"], "dev": STANDARD["valid"], "test": STANDARD["test"]}
    path = _prepare(csd, tmp_path, folds)
    capsys.readouterr()
    assert _validate(tmp_path, path) == 1
    err = capsys.readouterr().err
    assert "splits ['train', 'dev', 'test'], but a run needs ['train', 'valid', 'test']" in err


@pytest.mark.filterwarnings("ignore:.*segments belong to no fold")
@pytest.mark.filterwarnings("ignore:fold 'valid' lists 1 video id")
def test_an_empty_fold(csd, tmp_path, capsys):
    folds = {"train": STANDARD["train"] + STANDARD["valid"], "valid": ["nobody"], "test": STANDARD["test"]}
    path = _prepare(csd, tmp_path, folds)
    capsys.readouterr()
    assert _validate(tmp_path, path) == 1
    assert "split(s) ['valid'] hold no segment" in capsys.readouterr().err


def test_align_and_prepare_draw_no_bars_into_a_log(csd, tmp_path, capfd):
    """Without --no-progress, align and prepare draw bars only on a terminal (tqdm's own check, as `run` does):
    with stderr a file or a pipe, no bar frame reaches it."""
    seqs = [f"{n}={csd / n}.csd" for n in ("words", "acoustic", "visual")]
    assert main(["align", "--reference", "words", "--out", str(tmp_path / "al"), "--write-workers", "0", *seqs]) == 0
    (tmp_path / "folds.json").write_text(
        json.dumps({"train": ["v00000", "v00001", "v00002"], "valid": ["v00003"], "test": ["v00004", "v00005"]})
    )
    args = ["prepare", "--words", "words", "--labels", "labels", "--folds", str(tmp_path / "folds.json")]
    assert main([*args, "--out", str(tmp_path / "own.npz"), *seqs, f"labels={csd / 'labels'}.csd"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "it/s" not in err and "sequences:" not in err and "read words" not in err, err


def test_fetch_true_suite_with_a_tensors_file_not_written_yet(tmp_path, capsys):
    """With `fetch: true` the file need not exist at validate time (the plugin cannot tell its modalities yet,
    which is not an error); run then stops before training and says how to write the file, instead of
    'NoneType is not iterable' from validate or a 'no pinned public download' for it."""
    suite = tmp_path / "later.yaml"
    suite.write_text(
        "name: later\nfetch: true\ndatasets:\n  - {name: tensors, params: {path: later.npz, task: regression}}\n"
        "models:\n  - {name: supervised, params: {fusion: concat}}\nevaluate: {conditions: [clean, {missing: a}]}\n"
    )
    assert main(["validate", str(suite)]) == 0
    capsys.readouterr()
    assert main(["run", str(suite), "--out", str(tmp_path / "runs"), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert f"tensors: {tmp_path / 'later.npz'} not found, and fetch: true has nothing to download" in err
    assert "mfm-bench prepare" in err and "pinned" not in err and not (tmp_path / "runs" / "results.sqlite").exists()


def prepare_args(folds) -> list[str]:
    """`mfm-bench prepare` of the words, acoustic and labels sequences over the folds in ``folds``, no --out yet."""
    return ["prepare", "--no-progress", "--words", "words", "--labels", "labels", "--folds", str(folds)]


def test_prepare_warns_when_a_folds_ids_match_no_video(csd, tmp_path):
    """A fold whose ids are all spelled otherwise than the sequences' videos (vid1 for v00001) would be written
    empty with only 'N segments belong to no fold'; the warning names the fold, its ids and the ids to use."""
    (tmp_path / "folds.json").write_text(
        json.dumps({"train": ["v00000", "v00001", "v00002"], "valid": ["vid3"], "test": ["v00004", "v00005"]})
    )
    args = prepare_args(tmp_path / "folds.json")
    args += ["--out", str(tmp_path / "own.npz")] + [f"{n}={csd / n}.csd" for n in ("words", "acoustic", "labels")]
    with pytest.warns(UserWarning) as caught:
        assert main(args) == 0
    messages = [str(w.message) for w in caught]
    assert any("belong to no fold" in m for m in messages)
    assert (
        "fold 'valid' lists 1 video id(s) (vid3) and none is a video of the sequences, so it holds no segment; "
        "the sequences' video ids look like v00000, v00001, v00002" in messages
    )


def test_align_and_prepare_never_write_over_their_inputs_or_a_foreign_file(csd, tmp_path, capsys):
    """`align --out` the inputs' own folder replaced each input .csd with its aligned version, and `prepare --out`
    replaced any file (an input, a file of the user's); both now refuse before reading, leaving every byte. A
    file prepare wrote may still be written again."""
    import shutil

    for n in ("words", "acoustic", "labels"):
        shutil.copy(csd / f"{n}.csd", tmp_path / f"{n}.csd")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.csd")}
    seqs = [f"{n}={tmp_path / n}.csd" for n in ("words", "acoustic")]
    assert main(["align", "--no-progress", "--reference", "words", "--out", str(tmp_path), *seqs]) == 2
    err = capsys.readouterr().err
    assert f"--out: writing {tmp_path / 'words.csd'} would replace the input words={tmp_path / 'words.csd'}" in err
    (tmp_path / "folds.json").write_text(json.dumps(STANDARD))
    (tmp_path / "mine.npz").write_bytes(b"the user's own file")
    args = prepare_args(tmp_path / "folds.json")
    inputs = [*seqs, f"labels={tmp_path / 'labels'}.csd"]
    assert main([*args, "--out", str(tmp_path / "acoustic.csd"), *inputs]) == 2
    assert "would replace the input acoustic=" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "mine.npz"), *inputs]) == 2
    assert "was not written there by mfm-bench prepare (or changed since), so it is left" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.csd")} == before
    assert (tmp_path / "mine.npz").read_bytes() == b"the user's own file"
    assert main([*args, "--out", str(tmp_path / "own.npz"), *inputs]) == 0
    assert main([*args, "--out", str(tmp_path / "own.npz"), *inputs]) == 0  # again: its own file


def test_prepare_replaces_only_its_own_unchanged_file_unless_overwrite(csd, tmp_path, capsys):
    """Like align, prepare lists what it wrote (.mfm-bench-prepare.json beside the file): another prepared dataset
    copied to --out, or its own file changed since, is no longer replaced silently; --overwrite replaces it, and
    never an input."""
    import os
    import shutil

    (tmp_path / "folds.json").write_text(json.dumps(STANDARD))
    inputs = [f"{n}={csd / n}.csd" for n in ("words", "acoustic", "labels")]
    args = prepare_args(tmp_path / "folds.json")
    other = tmp_path / "elsewhere" / "mosei.npz"  # a colleague's prepared dataset: a valid tensors file
    assert main([*args, "--out", str(other), *inputs]) == 0
    out = tmp_path / "mosi.npz"
    shutil.copy(other, out)
    kept = out.read_bytes()
    capsys.readouterr()
    assert main([*args, "--seq-len", "4", "--out", str(out), *inputs]) == 2
    err = capsys.readouterr().err
    assert (
        f"--out {out}: already exists and was not written there by mfm-bench prepare (or changed since), so it is "
        "left as it is; pass --overwrite to replace it, or give --out another file"
    ) in err
    assert out.read_bytes() == kept
    assert main([*args, "--seq-len", "4", "--out", str(out), "--overwrite", *inputs]) == 0
    assert out.read_bytes() != kept
    assert main([*args, "--seq-len", "5", "--out", str(out), *inputs]) == 0  # its own now: rewritten
    listed = json.loads((tmp_path / ".mfm-bench-prepare.json").read_text())["files"]
    assert listed == {"mosi.npz": {"size": out.stat().st_size, "mtime_ns": out.stat().st_mtime_ns}}
    os.utime(out, ns=(0, 0))  # changed since (here only its time): someone else's now
    assert main([*args, "--out", str(out), *inputs]) == 2
    assert "was not written there by mfm-bench prepare (or changed since)" in capsys.readouterr().err
    acoustic = tmp_path / "acoustic.csd"
    shutil.copy(csd / "acoustic.csd", acoustic)
    before = acoustic.read_bytes()
    own = [f"words={csd / 'words'}.csd", f"acoustic={acoustic}", f"labels={csd / 'labels'}.csd"]
    assert main([*args, "--out", str(acoustic), "--overwrite", *own]) == 2
    assert "would replace the input acoustic=" in capsys.readouterr().err and acoustic.read_bytes() == before
