"""Dataset plugins declare their files, folds and formats (no data read); fetch, datasets and fetch: true read
only that declaration; describe(cfg) gives the spec without reading data."""

from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pytest

from mfm_bench.cli import main
from mfm_bench.contracts import DataDeclaration, DatasetFactory
from mfm_bench.registry import get_registry

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_real = pytest.mark.skipif(
    not (SHARED / "mfn-h5" / "mmmo" / "y_train.h5").is_file(), reason="../shared/data absent"
)


@pytest.fixture(autouse=True)
def _homes(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("MFM_BENCH_MIRROR", raising=False)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of a local HTTP server on 127.0.0.1 serving ``folder``."""
    servers = []

    def start(folder: Path) -> str:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        servers.append((httpd, t))
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd, t in servers:
        httpd.shutdown()
        httpd.server_close()
        t.join()


def declared(name, **params) -> DataDeclaration:
    reg = get_registry()
    return reg.get("dataset", name).factory.declare(reg.config_of("dataset", name, params))


def test_builtin_datasets_follow_the_protocol_and_declare_their_files():
    reg = get_registry()
    for name in reg.names("dataset"):
        factory = reg.get("dataset", name).factory
        assert isinstance(factory, DatasetFactory), name
        if name in ("synthetic-factors", "paired-digits"):  # generated data: no files to declare
            assert not hasattr(factory, "declare")
            continue
        decl = declared(name)
        assert decl.dataset == name and decl.formats and all(f.files for f in decl.formats)
    mmmo = declared("ict-mmmo", modalities=["audio"]).format("mfn-h5")
    assert mmmo.folder == "mfn-h5/mmmo" and mmmo.mirror_dir == "mmmo"
    assert sorted({f.role for f in mmmo.files}) == ["audio", "labels"] and len(mmmo.files) == 6
    y = next(f for f in mmmo.files if f.name == "y_train.h5")
    assert y.git_blob == "cc283761a63a872a03767aea5ef76da437192054" and y.url.endswith("/new_data/mmmo/y_train.h5")
    assert declared("cmu-mosi").folds["valid"][:1] and declared("ict-mmmo").folds is None
    assert not declared("iemocap").formats[0].fetchable and "USC SAIL" in declared("iemocap").formats[0].note


def test_declaration_follows_the_config():
    decl = declared(
        "cmu-mosi", format="csd", features={"text": "glove_vectors", "audio": "COVAREP", "visual": "FACET 4.2"}
    )
    assert [f.name for f in decl.formats] == ["csd"]
    assert "CMU_MOSI_Visual_Facet_42.csd" in [f.name for f in decl.formats[0].files]
    assert "CMU_MOSI_Visual_Facet_41.csd" not in [f.name for f in decl.formats[0].files]


def _fake_csd(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["x/data/vid/features"] = np.zeros((2, 3))


def test_fetch_true_fetches_the_files_of_a_non_default_feature(tmp_path, serve, write_suite, monkeypatch):
    from mfm_bench.data.fetch import prefetch_suite
    from mfm_bench.suite import load_suite

    mirror = tmp_path / "mirror"
    for name in (
        "CMU_MOSI_TimestampedWordVectors.csd",
        "CMU_MOSI_Visual_Facet_41.csd",
        "CMU_MOSI_Visual_Facet_42.csd",
        "CMU_MOSI_Opinion_Labels.csd",
    ):
        _fake_csd(mirror / "CMU_MOSI" / name)
    suite = load_suite(
        write_suite("""name: f
fetch: true
datasets:
  - {name: cmu-mosi, params: {format: csd, modalities: [visual], features: {visual: FACET 4.2}}}
models: [{name: supervised}]
""")
    )
    monkeypatch.setenv("MFM_BENCH_MIRROR", serve(mirror))
    logged = []
    prefetch_suite(suite, log=logged.append)
    got = sorted(p.name for p in (tmp_path / "home" / "csd" / "CMU_MOSI").iterdir())
    assert got == ["CMU_MOSI_Opinion_Labels.csd", "CMU_MOSI_TimestampedWordVectors.csd", "CMU_MOSI_Visual_Facet_42.csd"]
    assert logged[-1] == (f"cmu-mosi: data in {tmp_path / 'home' / 'csd' / 'CMU_MOSI'}")


def test_describe_equals_the_built_spec_for_synthetic_data():
    reg = get_registry()
    for params in (
        {"n_train": 8, "n_valid": 4, "n_test": 4},
        {
            "n_train": 8,
            "n_valid": 4,
            "n_test": 4,
            "dims": {"a": 3, "b": 5},
            "task": "classification",
            "n_classes": 3,
            "seq_len": 7,
            "min_len": 2,
        },
    ):
        cfg = reg.config_of("dataset", "synthetic-factors", params)
        factory = reg.get("dataset", "synthetic-factors").factory
        assert factory.describe(cfg) == factory(cfg).spec


def test_describe_reads_no_data():
    reg = get_registry()
    cfg = reg.config_of("dataset", "ict-mmmo", {"modalities": ["audio", "text"], "label": "regression"})
    spec = reg.get("dataset", "ict-mmmo").factory.describe(cfg)  # the data home is empty
    assert spec.input_dims == {"audio": 74, "text": 300} and spec.task.kind == "regression" and spec.seq_len == 20
    cfg = reg.config_of(
        "dataset",
        "cmu-mosi",
        {"format": "csd", "features": {"text": "glove_vectors", "audio": "COVAREP", "visual": "FACET 4.2"}},
    )
    assert reg.get("dataset", "cmu-mosi").factory.describe(cfg).input_dims == {"text": 300, "audio": 74, "visual": 35}


@needs_real
@pytest.mark.parametrize(
    "name,params",
    [
        ("ict-mmmo", {"modalities": ["audio", "visual"]}),
        ("ict-mmmo", {"label": "regression", "modalities": ["visual"]}),
        ("youtube", {"modalities": ["audio", "visual"], "seq_len": 12}),
    ],
)
def test_describe_equals_the_built_spec_on_real_data(name, params, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_DATA", str(SHARED))
    reg = get_registry()
    cfg = reg.config_of("dataset", name, params)
    factory = reg.get("dataset", name).factory
    assert factory.describe(cfg) == factory(cfg).spec


def test_fetch_an_unknown_dataset_says_so(capsys):
    assert main(["fetch", "ict-mmo"]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown dataset 'ict-mmo'" in err and "did you mean 'ict-mmmo'" in err and "/" not in err.split("available")[0]
    )
    assert main(["fetch", "synthetic-factors"]) == 2
    assert "declares no files" in capsys.readouterr().err
    assert main(["fetch", "youtube", "--format", "csd"]) == 2
    assert "youtube has no format 'csd'; it reads mfn-h5" in capsys.readouterr().err


def test_datasets_names_each_missing_file(tmp_path, capsys):
    folder = tmp_path / "home" / "mfn-h5" / "mmmo"
    for s in ("train", "valid", "test"):
        for stem in ("audio_", "video_", "y_"):
            _fake_csd(folder / f"{stem}{s}.h5")
        if s != "valid":
            _fake_csd(folder / f"text_{s}_emb.h5")
    assert main(["datasets"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("ict-mmmo"))
    assert "partial" in line and line.rstrip().endswith("text_valid_emb.h5")


def test_declarations_and_specs_do_not_import_torch(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\nfrom mfm_bench.cli import main\nfrom mfm_bench.registry import get_registry\n"
        "main(['datasets'])\nreg = get_registry()\n"
        "for name in ('synthetic-factors', 'ict-mmmo', 'youtube', 'pom'):\n"
        "    print(reg.get('dataset', name).factory.describe(reg.config_of('dataset', name, {})).input_dims)\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')"
    )
    env = {**__import__("os").environ, "MFM_BENCH_DATA": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "{'text': 300, 'audio': 43, 'visual': 41}" in out.stdout and out.stdout.strip().endswith("NOTORCH")
