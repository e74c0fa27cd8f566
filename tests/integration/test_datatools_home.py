"""MFM_BENCH_DATA set to a folder that does not exist, to a format folder inside the data home, or to the folder
above it: `mfm-bench datasets` and the run's fail-fast data check say so and name the data home to set."""

from __future__ import annotations

import pytest

from mfm_bench.cli import main
from mfm_bench.data.paths import home_problem

SUITE = """\
name: home
datasets: [{name: ict-mmmo, params: {modalities: [audio, visual]}}]
models: [{name: supervised, params: {fusion: concat}}]
seeds: [0]
train: {epochs: 1, device: cpu}
"""


@pytest.fixture
def data(tmp_path):
    home = tmp_path / "data"
    (home / "mfn-h5" / "mmmo").mkdir(parents=True)
    return home


def test_home_problem(data, tmp_path):
    folders = ["mfn-h5/mmmo", "mfn-h5/youtube", "csd/CMU_MOSI", "pkl"]
    assert home_problem(data, folders) is None
    assert "does not exist" in home_problem(tmp_path / "nowhere", folders)
    for inside in (data / "mfn-h5", data / "mfn-h5" / "mmmo"):
        assert f"set MFM_BENCH_DATA={data} " in home_problem(inside, folders)
    assert home_problem(tmp_path, folders).endswith(f"set MFM_BENCH_DATA={data}")
    assert home_problem(data / "mfn-h5" / "mmmo", ["csd/CMU_MOSI"]) is None  # no reason shows


def test_datasets_and_run_name_the_data_home_to_set(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MFM_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MFM_BENCH_DATA", str(data / "mfn-h5"))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert f"note: the data home {data / 'mfn-h5'} is the mfn-h5 folder inside one; set MFM_BENCH_DATA={data}" in out
    suite = tmp_path / "home.yaml"
    suite.write_text(SUITE)
    assert main(["run", str(suite), "--out", str(tmp_path / "runs"), "--no-progress"]) != 0
    assert f"note: the data home {data / 'mfn-h5'} is the mfn-h5 folder" in capsys.readouterr().err
    monkeypatch.setenv("MFM_BENCH_DATA", str(tmp_path / "typo"))
    assert main(["datasets"]) == 0
    assert f"note: the data home {tmp_path / 'typo'} does not exist" in capsys.readouterr().out
