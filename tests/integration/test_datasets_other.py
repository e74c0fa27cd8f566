"""POM and MOUD in the MFN folder layout, the fetch-on-demand parameter, and the datasets / cache / fetch commands."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mfm_bench.cli import main
from mfm_bench.registry import get_registry

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "nodata"))


def folder(root: Path, dims: dict, label_fn, sizes=(8, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = {"text": "text_{s}_emb.h5", "audio": "audio_{s}.h5", "visual": "video_{s}.h5"}
    for s, n in zip(("train", "valid", "test"), sizes):
        for m, d in dims.items():
            with h5py.File(root / names[m].format(s=s), "w") as f:
                f["d1"] = rng.normal(size=(n, 20, d))
        with h5py.File(root / f"y_{s}.h5", "w") as f:
            f["d1"] = label_fn(rng, n)


def test_pom_is_multi_regression_over_17_traits(tmp_path):
    folder(tmp_path / "mfn-h5" / "pom", {"text": 300, "audio": 43, "visual": 41}, lambda r, n: r.uniform(1, 7, (n, 17)))
    ds = get_registry().build("dataset", "pom", path=str(tmp_path))
    t = ds.spec.task
    assert (
        t.kind == "multi_regression" and len(t.targets) == 17 and t.targets[0] == "trait_01" and t.range == (1.0, 7.0)
    )
    assert ds.split("test").target.shape == (4, 17) and ds.spec.input_dims == {"text": 300, "audio": 43, "visual": 41}
    named = get_registry().build("dataset", "pom", path=str(tmp_path), traits=[f"t{i}" for i in range(17)])
    assert named.spec.task.targets[3] == "t3"


def test_pom_wrong_label_width_is_named(tmp_path):
    folder(tmp_path / "pom", {"audio": 43, "visual": 41}, lambda r, n: r.uniform(1, 7, (n, 16)))
    with pytest.raises(ValueError, match=r"y_train.h5: expected 17 trait scores per sample, found 16"):
        get_registry().build("dataset", "pom", path=str(tmp_path / "pom"), modalities=["audio", "visual"])


def test_moud_one_hot_labels(tmp_path):
    folder(tmp_path / "moud", {"audio": 74, "visual": 36}, lambda r, n: np.eye(2)[np.arange(n) % 2])
    ds = get_registry().build("dataset", "moud", path=str(tmp_path / "moud"), modalities=["audio", "visual"])
    assert ds.spec.task.class_names == ("negative", "positive")
    assert ds.split("train").target.tolist() == [0, 1, 0, 1, 0, 1, 0, 1]


def test_moud_label_file_with_another_key_is_named(tmp_path):
    """The number of classes is read from y_train.h5's header before any data (validate, describe): a file
    without the d1 key, or not HDF5 at all, is an error naming it and its keys, never a bare StopIteration."""
    folder(tmp_path / "moud", {"audio": 74, "visual": 36}, lambda r, n: np.eye(2)[np.arange(n) % 2])
    y = tmp_path / "moud" / "y_train.h5"
    with h5py.File(y, "w") as f:
        f["labels"] = np.eye(2)[np.arange(8) % 2]
    reg = get_registry()
    cfg = reg.config_of("dataset", "moud", {"path": str(tmp_path / "moud"), "modalities": ["audio", "visual"]})
    with pytest.raises(ValueError, match=rf"moud: {y} has no dataset named 'd1' or 'data' \(it holds \['labels'\]\)"):
        reg.get("dataset", "moud").factory.describe(cfg)
    y.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=rf"moud: {y} cannot be opened as HDF5"):
        reg.get("dataset", "moud").factory.describe(cfg)


def test_params_are_validated():
    from mfm_bench.config import ConfigError

    with pytest.raises(ConfigError, match="modalities"):
        get_registry().build("dataset", "youtube", modalities=["audio", "smell"])
    with pytest.raises(ConfigError, match="did you mean 'label'"):
        get_registry().build("dataset", "ict-mmmo", lable="binary")


def test_other_tools_modality_names_get_the_project_name(write_suite, capsys):
    """'vision' (the pickles' arrays), 'video' (the h5 files) or 'acoustic' for a real dataset's modalities: the
    error says which name to write, in a suite and on fetch's --modalities."""
    from mfm_bench.suite import SuiteError, load_suite

    suite = write_suite(
        "name: v\ndatasets:\n  - {name: youtube, params: {modalities: [acoustic, vision]}}\n"
        "models:\n  - {name: supervised, params: {fusion: concat}}\n"
    )
    with pytest.raises(SuiteError, match=r"suite.yaml:3: .*write 'audio' for 'acoustic', 'visual' for 'vision'"):
        load_suite(suite)
    assert main(["fetch", "youtube", "--modalities", "audio,video", "--mirror", "http://127.0.0.1:9"]) == 2
    assert "write 'visual' for 'video'" in capsys.readouterr().err


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror on 127.0.0.1 serving ../shared/data/mfn-h5, and an empty data home; yields the home."""
    import http.server
    import threading
    from functools import partial

    if not (SHARED / "mfn-h5" / "youtube" / "y_train.h5").is_file():
        pytest.skip("../shared/data absent")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(SHARED / "mfn-h5")))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("MFM_BENCH_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}")
    home = tmp_path / "home"
    monkeypatch.setenv("MFM_BENCH_DATA", str(home))
    try:
        yield home
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join()


def test_fetch_true_downloads_missing_files_before_reading(mirror):
    ds = get_registry().build("dataset", "youtube", modalities=["audio"], fetch=True)
    assert len(ds.split("train")) == 173 and (mirror / "mfn-h5" / "youtube" / "audio_train.h5").is_file()
    assert not (mirror / "mfn-h5" / "youtube" / "video_train.h5").exists()


class QuietHandler(__import__("http.server").server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_datasets_and_cache_commands(tmp_path, monkeypatch, capsys):
    folder(tmp_path / "mfn-h5" / "youtube", {"audio": 74, "visual": 36}, lambda r, n: np.eye(3)[np.arange(n) % 3])
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("youtube"))
    assert "partial" in line and str(tmp_path / "mfn-h5" / "youtube") in line
    assert main(["datasets", "--missing"]) == 0
    assert "text_train_emb.h5" in capsys.readouterr().out
    get_registry().build("dataset", "youtube", modalities=["audio"])
    get_registry().build("dataset", "youtube", modalities=["audio", "visual"])
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert out.count("youtube") == 2 and "8/3/4" in out
    assert main(["cache", "clear"]) == 2
    assert main(["cache", "clear", "youtube"]) == 0
    assert "removed 2 cache entries" in capsys.readouterr().out
    assert main(["cache", "ls"]) == 0 and "(empty)" in capsys.readouterr().out


def test_fetch_command_reports_failure(tmp_path, capsys):
    assert main(["fetch", "youtube", "--modalities", "audio,smell"]) == 2
    assert main(["fetch", "iemocap", "--to", str(tmp_path)]) == 2
    assert "no pinned public download" in capsys.readouterr().err


def test_prefetch_suite_downloads_what_a_fetch_true_suite_lacks(tmp_path, mirror, write_suite):
    from mfm_bench.runner import run_suite
    from mfm_bench.suite import load_suite

    suite = load_suite(
        write_suite("""name: f
fetch: true
datasets:
  - {name: ict-mmmo, params: {modalities: [visual]}}
  - {name: synthetic-factors, params: {n_train: 64, n_valid: 24, n_test: 10}}
models: [{name: supervised, params: {encoder: mean}}]
train: {epochs: 3, lr: 0.01}
""")
    )
    logged = []
    counts = run_suite(suite, tmp_path / "out", progress=False, log=logged.append)  # fetches before training
    assert counts["finished"] == 2 and any("ict-mmmo: data in" in line for line in logged)
    got = sorted(p.name for p in (mirror / "mfn-h5" / "mmmo").iterdir())
    assert got == sorted(
        [f"video_{s}.h5" for s in ("train", "valid", "test")] + [f"y_{s}.h5" for s in ("train", "valid", "test")]
    )


def test_a_path_to_the_folder_above_the_datasets_names_the_folder_to_give(tmp_path):
    """params.path naming the mfn-h5 folder (between the data home and mfn-h5/youtube) is not read as either;
    the error names the dataset's folder and the data home to give instead."""
    from mfm_bench.plugins.datasets.base import DataMissingError

    folder(tmp_path / "home" / "mfn-h5" / "youtube", {"audio": 74}, lambda r, n: np.eye(3)[np.arange(n) % 3])
    above = tmp_path / "home" / "mfn-h5"
    with pytest.raises(DataMissingError) as info:
        get_registry().build("dataset", "youtube", path=str(above), modalities=["audio"])
    expected = f"give params.path: {above / 'youtube'}, or the data home {tmp_path / 'home'})"
    assert f"({above} holds the youtube folder but is not it: {expected}" in str(info.value)
    for good in (above / "youtube", tmp_path / "home"):
        assert len(get_registry().build("dataset", "youtube", path=str(good), modalities=["audio"]).split("test")) == 4


def test_a_relative_path_is_the_working_folders(tmp_path, monkeypatch):
    """params.path given relative (the Python API; suites resolve theirs against the suite's folder) names a
    folder under the working folder: it was found there, then read from under the data home."""
    folder(tmp_path / "work" / "yt", {"audio": 74}, lambda r, n: np.eye(3)[np.arange(n) % 3])
    monkeypatch.chdir(tmp_path / "work")
    reg = get_registry()
    (fmt,) = (
        reg.get("dataset", "youtube")
        .factory.declare(reg.config_of("dataset", "youtube", {"path": "yt", "modalities": ["audio"]}))
        .formats
    )
    assert fmt.folder == str(tmp_path / "work" / "yt")
    ds = reg.build("dataset", "youtube", path="yt", modalities=["audio"])
    assert ds.folder == tmp_path / "work" / "yt" and len(ds.split("train")) == 8
