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


@pytest.fixture
def served(tmp_path):
    """A local HTTP server (127.0.0.1) serving tmp_path/served/blob.bin; yields its URL."""
    import functools
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()
    (root / "blob.bin").write_bytes(bytes(range(256)) * 1024)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/blob.bin"
    httpd.shutdown()
    httpd.server_close()


def test_a_part_file_that_cannot_be_written_names_the_url_the_file_and_the_fix(served, tmp_path):
    """Writing FILE.part fails (a folder in the way, a full disk): the error names the URL, the .part file and
    the destination, and says what to do; it is never a bare OSError."""
    import os

    from mfm_bench.contracts import DataFile
    from mfm_bench.data.fetch import FetchError, download

    dest = tmp_path / "home" / "blob.bin"
    part = dest.with_name("blob.bin.part")
    part.mkdir(parents=True)  # a folder where the .part file goes
    with pytest.raises(FetchError) as info:
        download(served, dest, DataFile("blob.bin"), progress=False)
    text = str(info.value)
    assert (
        text.startswith(f"{served}: cannot write {part} (Is a directory)") and f"so {dest} was not downloaded" in text
    )
    assert "run the same command again" in text and not dest.exists()
    part.rmdir()
    if not os.path.exists("/dev/full"):
        return
    part.symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(FetchError) as info:
        download(served, dest, DataFile("blob.bin"), progress=False)
    text = str(info.value)
    assert text.startswith(f"{served}: cannot write {part} (No space left on device)") and "free space" in text
    assert "interrupted" not in text and not dest.exists()
    part.unlink()
    assert download(served, dest, DataFile("blob.bin"), progress=False) == dest and dest.stat().st_size == 256 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[mirrors]\nyoutube = 5\n", "[mirrors] youtube must be a URL string, got 5"),
        ('mirrors = "http://host/mfn-h5"\n', "mirrors must be a table of URLs, got 'http://host/mfn-h5'"),
    ],
)
def test_a_mirrors_entry_of_the_wrong_type_names_the_file_and_key(text, expected, tmp_path, monkeypatch, capsys):
    """A user config whose mirrors are not a table of strings: one error naming the file, the key and the form
    to write, instead of an AttributeError traceback from urllib or dict.get."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    monkeypatch.setenv("MFM_BENCH_CONFIG", str(cfg))
    assert main(["fetch", "youtube", "--modalities", "audio", "--to", str(tmp_path / "home"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}: {expected}" in err and '[mirrors] and then lines such as mfn-h5 = "https://' in err
    assert "Traceback" not in err
