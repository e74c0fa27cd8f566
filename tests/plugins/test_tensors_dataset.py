"""The `tensors` dataset: docs/datasets.md's walk-through from generated .csd files through `mfm-bench prepare` to a
suite that trains, and the format's contract (masks, metadata, task from params, cheap spec)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from mfm_bench.align import write_csd
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences, standard_folds
from mfm_bench.cli import main
from mfm_bench.registry import get_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"


def _walkthrough() -> tuple[str, str]:
    """The `mfm-bench prepare` command and the suite of docs/datasets.md's "Your own data" section."""
    text = DOC.read_text().split("## Your own data", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    prepare = next(b for lang, b in blocks if "mfm-bench prepare" in b)
    suite = next(b for lang, b in blocks if lang == "yaml")
    return prepare.replace("\\\n", " "), suite


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The walk-through's step 1 and 2 in a temp folder: generated .csd files, folds.json, `mfm-bench prepare`."""
    d = tmp_path_factory.mktemp("own")
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=12, words_per_video=30, segments_per_video=3, seed=7))
    for name, seq in seqs.items():
        write_csd(d / f"{name}.csd", seq)
    folds = standard_folds(list(seqs["labels"].keys()), seed=1)
    (d / "folds.json").write_text(json.dumps(folds))
    command, suite = _walkthrough()
    argv = shlex.split(command)
    assert argv[0] == "mfm-bench"
    argv = [
        a if "=" not in a or a.startswith("--") else a.split("=")[0] + "=" + str(d / a.split("=")[1]) for a in argv[1:]
    ]
    argv = [str(d / a) if a in ("folds.json", "my-data.npz") else a for a in argv]
    assert main(argv + ["--no-progress"]) == 0
    return d, seqs, suite


def test_prepare_writes_masks_and_alignment_metadata(prepared):
    d, seqs, _ = prepared
    with np.load(d / "my-data.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta.json"]))
        assert meta["format"] == "mfm-bench-tensors" and meta["version"] == 1
        assert meta["alignment"]["seq_len"] == 8 and meta["alignment"]["collapse"] == ["mean"]
        assert meta["alignment"]["nan_to_num"] is True and meta["alignment"]["words"] == "words"
        assert Path(meta["alignment"]["sources"]["acoustic"]) == d / "acoustic.csd"
        assert meta["sequences"]["acoustic"] == {"dim": seqs["acoustic"].feature_shape[0], "numeric": True}
        for split, n in meta["sizes"].items():
            mask, x = z[f"{split}/acoustic.mask"], z[f"{split}/acoustic"]
            assert mask.shape == x.shape[:2] == (n, 8) and mask.dtype == bool
            # left-padded: the real steps are the last ones, and padding is zero
            assert (np.diff(mask.astype(int), axis=1) >= 0).all()
            assert (x[~mask] == 0).all()
    assert not list(d.glob(".my-data.npz*"))  # the atomic write left no temporary file


def test_walkthrough_suite_validates_and_trains(prepared, monkeypatch):
    d, _, suite = prepared
    (d / "my-data.yaml").write_text(suite)
    monkeypatch.chdir(d)
    assert main(["validate", "my-data.yaml"]) == 0
    assert main(["run", "my-data.yaml", "--out", str(d / "runs"), "--no-progress"]) == 0
    import sqlite3

    with sqlite3.connect(d / "runs" / "results.sqlite") as db:
        assert db.execute("select count(*) from runs where status = 'finished'").fetchone()[0] == 1
        conds = {r[0] for r in db.execute("select distinct condition from metrics")}
    assert {"clean", "missing:acoustic"} <= conds
    # the leaderboard's feature-normalisation table names the default, as for every other dataset
    md = (d / "runs" / "leaderboard.md").read_text()
    assert re.search(r"^\| tensors +\| +zscore +\|$", md.split("feature normalisation", 1)[1], re.M), md


def test_spec_reads_only_the_header_and_task_comes_from_params(prepared, monkeypatch):
    d, seqs, _ = prepared
    path = str(d / "my-data.npz")
    ds = get_registry().build("dataset", "tensors", path=path, task="regression", range=[-3, 3])
    assert set(ds.spec.modality_names) == {"words", "acoustic", "visual"}
    assert ds.spec.task.kind == "regression" and ds.spec.task.range == (-3.0, 3.0)
    tr = ds.split("train")
    assert tr.inputs["acoustic"].shape[1:] == (8, seqs["acoustic"].feature_shape[0])
    assert tr.target.ndim == 1 and tr.ids[0].count("[") == 1
    # the spec without reading any array: np.load's members are opened lazily; forbid reading arrays
    from mfm_bench.data import prepare as fmt

    monkeypatch.setattr(fmt, "read_tensors_split", lambda *a, **k: pytest.fail("describe read an array"))
    cls = type(ds)
    spec = cls.describe(type(ds.cfg)(path=path, task="multi_regression", targets=["y"], modalities=["visual"]))
    assert spec.task.kind == "multi_regression" and spec.input_dims == {"visual": seqs["visual"].feature_shape[0]}


def test_classification_labels_and_bad_params(prepared):
    d, _, _ = prepared
    reg = get_registry()
    path = str(d / "my-data.npz")
    with pytest.raises(Exception, match="integers 0..1"):
        reg.build("dataset", "tensors", path=path, task="classification", classes=["neg", "pos"])
    with pytest.raises(Exception, match="label_index 3"):
        reg.build("dataset", "tensors", path=path, label_index=3)
    with pytest.raises(Exception, match="not numeric sequences"):
        reg.build("dataset", "tensors", path=path, modalities=["audio"])
    with pytest.raises(Exception, match="mfm-bench prepare"):
        reg.build("dataset", "tensors", path=str(d / "acoustic.csd"))
    with pytest.raises(Exception, match="path is required"):
        reg.build("dataset", "tensors")


def test_normalise_zscore_none_and_the_deprecated_normalize(prepared):
    d, _, _ = prepared
    reg = get_registry()
    path = str(d / "my-data.npz")
    z = reg.build("dataset", "tensors", path=path)
    assert z.cfg.normalise == "zscore"
    none = reg.build("dataset", "tensors", path=path, normalise="none")
    x_z, m = z.split("train").inputs["acoustic"].numpy(), z.split("train").mask["acoustic"].numpy()
    x_raw = none.split("train").inputs["acoustic"].numpy()
    real = x_z[m]  # (steps, D): z-scored with the train split's real steps
    np.testing.assert_allclose(real.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(real.std(0), 1, atol=1e-2)
    assert not np.allclose(x_raw[m].mean(0), 0, atol=1e-2) or not np.allclose(x_raw[m].std(0), 1, atol=1e-2)
    for old, new, ref in ((True, "zscore", x_z), (False, "none", x_raw)):
        with pytest.warns(DeprecationWarning, match=f"normalize is deprecated.*normalise: {new}"):
            ds = reg.build("dataset", "tensors", path=path, normalize=old)
        assert ds.cfg.normalise == new and ds.cfg.normalize is None
        np.testing.assert_array_equal(ds.split("train").inputs["acoustic"].numpy(), ref)
    with pytest.raises(Exception, match="normalise: original .* use zscore \\(default\\) or none"):
        reg.build("dataset", "tensors", path=path, normalise="original")
    with pytest.raises(Exception, match="normalise"):
        reg.build("dataset", "tensors", path=path, normalise="minmax")


def test_fetch_tensors_says_how_to_make_the_file(prepared, capsys):
    """`mfm-bench fetch tensors` has nothing to download: it prints the prepare command and the params to write
    (no placeholder file name), and the command it prints works on the walk-through's files."""
    d, _, _ = prepared
    assert main(["fetch", "tensors"]) != 0
    err = capsys.readouterr().err
    assert "tensors: nothing to download" in err and "params: {path: my-data.npz, task: regression}" in err
    assert "<params.path" not in err and "owners" not in err
    command = re.search(r"`(mfm-bench prepare [^`]+)`", err).group(1)
    argv = [
        a if a.startswith("--") or "=" not in a else a.split("=")[0] + "=" + str(d / a.split("=")[1])
        for a in shlex.split(command)[1:]
    ]
    argv = [str(d / a) if a == "folds.json" else str(d / "advised.npz") if a == "my-data.npz" else a for a in argv]
    assert main(argv + ["--no-progress"]) == 0
    ds = get_registry().build("dataset", "tensors", path=str(d / "advised.npz"), task="regression")
    assert "acoustic" in ds.spec.modality_names and len(ds.split("train")) > 0


def test_datasets_lists_tensors_as_the_users_own_file(capsys):
    """`mfm-bench datasets` shows tensors as the user's own file, not as missing with a placeholder name."""
    assert main(["datasets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("tensors"))
    assert "(your own file, at params.path)" in line and "<params.path" not in line and " no " not in line
    assert main(["datasets", "--missing"]) == 0
    assert "tensors" not in capsys.readouterr().out
