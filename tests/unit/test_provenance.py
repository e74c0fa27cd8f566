"""Cost per run and provenance: recorded in the store, shown in the leaderboard; --deterministic and --limit."""

import json
import platform
from pathlib import Path

import pytest
import torch

from mfm_bench.cli import main
from mfm_bench.provenance import Limited, cpu_name, data_fingerprint, git_state, origin, origin_notes
from mfm_bench.results import SCHEMA_VERSION, ResultStore

SUITE = """\
name: tiny-prov
datasets:
  - name: synthetic-factors
    params: {n_train: 64, n_valid: 16, n_test: 40, dims: {text: 6, audio: 3, visual: 4}}
models: [{name: supervised, params: {fusion: late}}]
seeds: [0]
train: {epochs: 1, device: cpu}
report: {formats: [markdown, json]}
"""


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prov")
    (tmp / "s.yaml").write_text(SUITE)
    out = tmp / "out"
    assert (
        main(["run", str(tmp / "s.yaml"), "--out", str(out), "--no-progress", "--limit", "20", "--deterministic"]) == 0
    )
    return out


def test_environment_records_provenance(limited):
    with ResultStore(limited) as store:
        (run,) = store.runs()
    env = run["environment"]
    assert env["store_schema"] == SCHEMA_VERSION and env["leaderboard_schema"] >= 1
    assert env["deterministic"] is True and env["torch"] and env["numpy"] and "cuda" in env and env["device_name"]
    assert env["cpu"] and env["cpu"] == cpu_name()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():  # Linux on x86: the model, not "x86_64"
        assert env["cpu"] != platform.machine() and env["cpu"] in cpuinfo.read_text()
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert len(env["data_fingerprint"]) == 16
    assert env["plugins"]["model:supervised"].startswith("mfm-bench")
    commit, dirty = git_state()
    assert env["git_commit"] == commit and env["git_dirty"] == dirty
    assert run["config"]["limit"] == 20


def test_cost_metrics_in_store_and_leaderboard(limited):
    with ResultStore(limited) as store:
        got = {m["metric"]: m["value"] for m in store.metrics()}
    assert got["infer_ms_per_sample"] > 0 and got["peak_rss_mb"] > 10 and got["params"] > 0
    assert got["train_seconds"] > 0
    md = (limited / "leaderboard.md").read_text()
    assert md.startswith("# Leaderboard (smoke test: --limit 20 samples per split")
    assert "ms/sample" in md and "peak RSS MB" in md
    board = json.loads((limited / "leaderboard.json").read_text())
    assert board["schema_version"] >= 1 and board["runs"][0]["limit"] == 20


def test_limit_is_a_seeded_subset_in_split_order():
    from mfm_bench.registry import get_registry

    ds = get_registry().build("dataset", "synthetic-factors", n_train=64, n_valid=16, n_test=40)
    a, b = Limited(ds, 10).split("test"), Limited(ds, 10).split("test")
    assert len(a) == 10 and a.ids == b.ids and a.ids == sorted(a.ids)
    assert set(a.ids) <= set(ds.split("test").ids)
    assert len(Limited(ds, 100).split("valid")) == 16  # smaller splits stay whole
    assert data_fingerprint(ds) == data_fingerprint(ds) != data_fingerprint(Limited(ds, 10))


def test_limit_must_be_positive(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["run", "x.yaml", "--limit", "0"])
    assert "positive number" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "x.yaml", "--jobs", "0"],
        ["compare", "a", "b", "--alpha", "1.5"],
        ["compare", "a", "b", "--max-slowdown", "nan"],
    ],
)
def test_numeric_options_are_checked_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit):
        main(argv)
    assert f"argument {argv[-2]}: takes" in capsys.readouterr().err


def test_origin_reads_each_aspect_in_words_and_notes_only_what_differs():
    intel = {
        "mfm_bench": "0.1.0",
        "git_commit": "a" * 40,
        "git_dirty": True,
        "torch": "2.13.0+cpu",
        "cuda": None,
        "device": "cpu",
        "cpu": "Intel(R) Xeon(R) Processor",
        "cpu_capability": "AVX512",
        "onednn_linear": "off (auto: GenuineIntel)",
    }
    assert origin(intel) == {
        "code": "mfm-bench 0.1.0 at aaaaaaaaaa with local changes",
        "torch": "torch 2.13.0+cpu",
        "hardware": "Intel(R) Xeon(R) Processor (AVX512, oneDNN linear off)",
    }
    gpu = intel | {"device": "cuda:0", "gpu": "NVIDIA H200", "cuda": "12.8", "git_dirty": False}
    assert origin(gpu)["hardware"] == "NVIDIA H200" and origin(gpu)["torch"] == "torch 2.13.0+cpu (CUDA 12.8)"
    old = {"mfm_bench": "0.1.0", "torch": "2.13.0+cpu", "device": "cpu"}  # a store from before cpu was recorded
    assert origin(old) == {"code": "mfm-bench 0.1.0", "torch": "torch 2.13.0+cpu", "hardware": "CPU not recorded"}

    assert origin_notes([origin(intel)] * 3) == []
    code, hardware = origin_notes([origin(intel)] * 2 + [origin(old)])  # torch agrees: no note of it
    assert code.startswith("different code: mfm-bench 0.1.0 at aaaaaaaaaa with local changes (2 runs); ")
    assert "; mfm-bench 0.1.0 (1 run) (a fix or change between versions" in code
    assert hardware.startswith("different hardware: ") and "; CPU not recorded (1 run)" in hardware
    notes = origin_notes([origin(intel)] * 2 + [origin(intel | {"cpu_capability": "AVX2"})])
    assert notes == [
        "different hardware: Intel(R) Xeon(R) Processor (AVX512, oneDNN linear off) (2 runs); Intel(R) Xeon(R) "
        "Processor (AVX2, oneDNN linear off) (1 run) (BLAS and oneDNN kernels round differently on other CPU types "
        "and GPUs)"
    ]
    (now,) = origin_notes([origin(intel)], now=origin(intel | {"torch": "2.14.0+cpu"}))
    assert now.startswith("different torch: torch 2.13.0+cpu (1 run); now torch 2.14.0+cpu")


def test_the_git_state_of_a_run_never_takes_the_checkouts_index_lock(monkeypatch):
    """A plain `git status` refreshes the index under .git/index.lock; a run killed during it (SIGKILL, a timeout)
    left that file in the user's checkout and every later git command refused. Every git call a run makes must be
    lock-free: read-only commands, and status with --no-optional-locks."""
    import subprocess

    import mfm_bench.provenance as prov

    real, calls = subprocess.run, []

    def run(args, *a, **k):
        calls.append(list(args))
        return real(args, *a, **k)

    monkeypatch.setattr(prov.subprocess, "run", run)
    commit, dirty = prov.git_state()
    if commit is None:
        pytest.skip("not a git checkout")
    assert [c[1:] for c in calls if c[0] == "git" and "status" in c] == [
        ["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"]
    ]
    assert all(c[1] in ("rev-parse", "--no-optional-locks") for c in calls)
