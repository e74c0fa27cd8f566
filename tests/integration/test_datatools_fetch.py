"""`mfm-bench fetch` with a mirror that is not a URL: one error naming where the mirror was set and the fix,
never urllib's ValueError traceback; a file:// mirror works."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfm_bench.cli import main

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mfn-h5"


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("MFM_BENCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MFM_BENCH_MIRROR", raising=False)


def test_mirror_that_is_not_a_url_is_one_clear_error(tmp_path, monkeypatch, capsys):
    args = ["fetch", "youtube", "--modalities", "audio", "--to", str(tmp_path / "home"), "--quiet"]
    assert main([*args, "--mirror", "mirror.example.org/mfn-h5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--mirror: mirror 'mirror.example.org/mfn-h5' is not a URL" in err

    local = tmp_path / "copy"
    local.mkdir()
    monkeypatch.setenv("MFM_BENCH_MIRROR", str(local))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"MFM_BENCH_MIRROR: mirror '{local}' is not a URL" in err and local.as_uri() in err

    monkeypatch.delenv("MFM_BENCH_MIRROR")
    cfg = tmp_path / "config.toml"
    cfg.write_text('[mirrors]\nyoutube = "127.0.0.1:8000"\n')
    monkeypatch.setenv("MFM_BENCH_CONFIG", str(cfg))
    assert main(args) == 2
    assert f"[mirrors] youtube in {cfg}: mirror '127.0.0.1:8000' is not a URL" in capsys.readouterr().err
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.h5"))


@pytest.mark.skipif(not (SHARED / "youtube" / "y_train.h5").is_file(), reason="../shared/data/mfn-h5 absent")
def test_file_url_mirror_fetches_and_verifies(tmp_path, capsys):
    home = tmp_path / "home"
    mirror = SHARED.resolve().as_uri()
    assert main(["fetch", "youtube", "--modalities", "audio", "--to", str(home), "--quiet", "--mirror", mirror]) == 0
    got = sorted(p.name for p in (home / "mfn-h5" / "youtube").iterdir())
    assert got == sorted(f"{k}_{s}.h5" for k in ("audio", "y") for s in ("train", "valid", "test"))


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_out_of_range_is_a_usage_error(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["fetch", "youtube", "--to", str(tmp_path), "--mirror", "http://127.0.0.1:9", f"--timeout={value}"])
    assert usage.value.code == 2
    assert f"argument --timeout: takes seconds, from 0.1 to 86400, got '{value}'" in capsys.readouterr().err


def test_a_data_home_that_cannot_be_created_is_one_error(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    code = main(["fetch", "youtube", "--to", str(a_file), "--mirror", "http://127.0.0.1:9", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"youtube: cannot create {a_file / 'mfn-h5' / 'youtube'}" in err and "give --to" in err
