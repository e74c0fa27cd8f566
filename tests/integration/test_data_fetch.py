"""Downloads against a local HTTP server on 127.0.0.1 serving ../shared/data/mfn-h5: verification against the
pinned git blob ids, a corrupted file (rejected, not cached), an interrupted download (resumed with Range),
missing files on the mirror, and no network at all."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import threading
from pathlib import Path

import pytest

from mfm_bench.data import fetch
from mfm_bench.registry import get_registry

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mfn-h5"
needs_real = pytest.mark.skipif(
    not (SHARED / "youtube" / "y_train.h5").is_file(), reason="../shared/data/mfn-h5 absent"
)


def declared(name, **params):
    """The data declaration of dataset ``name`` under ``params``."""
    reg = get_registry()
    return reg.get("dataset", name).factory.declare(reg.config_of("dataset", name, params))


class Faults:
    def __init__(self) -> None:
        self.corrupt: set[str] = set()  # paths served with one byte flipped
        self.cut_once: set[str] = set()  # paths whose first response stops half way
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)


def make_handler(root: Path, faults: Faults):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            rel = self.path.lstrip("/")
            faults.requests.append((rel, self.headers.get("Range")))
            path = root / rel
            if not path.is_file():
                self.send_error(404)
                return
            data = bytearray(path.read_bytes())
            if rel in faults.corrupt:
                data[len(data) // 2] ^= 0xFF
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
            body = bytes(data[start:])
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if rel in faults.cut_once:
                faults.cut_once.discard(rel)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def server():
    faults = Faults()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(SHARED, faults))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", faults
    httpd.shutdown()
    httpd.server_close()
    t.join()


def test_git_blob_sha1_matches_git(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello\x00world\n" * 100)
    want = hashlib.sha1(b"blob %d\0" % p.stat().st_size + p.read_bytes()).hexdigest()
    assert fetch.git_blob_sha1(p) == want
    try:
        out = subprocess.run(["git", "hash-object", str(p)], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return
    assert out == want


@needs_real
def test_shared_copy_matches_the_manifest():
    checked = 0
    for name in ("youtube", "ict-mmmo", "cmu-mosi"):
        fmt = declared(name, format="mfn-h5").format("mfn-h5")
        for f in fmt.files:
            p = SHARED / fmt.mirror_dir / f.name
            if p.is_file():
                assert fetch.git_blob_sha1(p) == f.git_blob, p
                checked += 1
    assert checked == 25


@needs_real
def test_fetch_from_mirror_verifies_and_places_files(server, tmp_path):
    url, faults = server
    got = fetch.fetch_dataset(
        declared("youtube", modalities=["audio", "visual"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
    )
    names = sorted(p.name for p in got)
    assert len(names) == 9 and "video_train.h5" in names and not any(n.startswith("text_") for n in names)
    for p in got:
        assert p.read_bytes() == (SHARED / "youtube" / p.name).read_bytes()
    assert not list(tmp_path.rglob("*.part"))
    # a second run finds everything verified and downloads nothing
    n = len(faults.requests)
    fetch.fetch_dataset(
        declared("youtube", modalities=["audio", "visual"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
    )
    assert len(faults.requests) == n


@needs_real
def test_corrupted_file_is_rejected_and_not_cached(server, tmp_path):
    url, faults = server
    faults.corrupt.add("mmmo/y_train.h5")
    with pytest.raises(fetch.FetchError, match=r"y_train.h5: git blob id .* expected cc283761"):
        fetch.fetch_dataset(
            declared("ict-mmmo", modalities=["audio"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
        )
    dest = tmp_path / "mfn-h5" / "mmmo"
    assert not (dest / "y_train.h5").exists() and not (dest / "y_train.h5.part").exists()
    assert (dest / "audio_train.h5").is_file()  # the good files were kept
    faults.corrupt.clear()
    fetch.fetch_dataset(
        declared("ict-mmmo", modalities=["audio"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
    )
    assert fetch.git_blob_sha1(dest / "y_train.h5") == "cc283761a63a872a03767aea5ef76da437192054"


@needs_real
def test_a_copy_that_fails_verification_is_kept_until_a_verified_one_replaces_it(server, tmp_path):
    """A file already in the data home that fails verification is not deleted before the download: when the
    download fails it is still there (and the failure says so); a verified download then replaces it."""
    url, faults = server
    dest = tmp_path / "mfn-h5" / "mmmo"
    dest.mkdir(parents=True)
    (dest / "y_train.h5").write_bytes(b"the user's own copy")
    faults.corrupt.add("mmmo/y_train.h5")
    with pytest.raises(fetch.FetchError, match=r"expected cc283761.*the copy there fails verification and was left"):
        fetch.fetch_dataset(
            declared("ict-mmmo", modalities=["audio"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
        )
    assert (dest / "y_train.h5").read_bytes() == b"the user's own copy"
    faults.corrupt.clear()
    fetch.fetch_dataset(
        declared("ict-mmmo", modalities=["audio"]), to=tmp_path, mirror=url, progress=False, log=lambda m: None
    )
    assert fetch.git_blob_sha1(dest / "y_train.h5") == "cc283761a63a872a03767aea5ef76da437192054"


@needs_real
def test_interrupted_download_resumes_with_range(server, tmp_path):
    url, faults = server
    rel = "mmmo/audio_train.h5"
    faults.cut_once.add(rel)
    rf = next(f for f in declared("ict-mmmo", modalities=["audio"]).formats[0].files if f.name == "audio_train.h5")
    dest = tmp_path / "audio_train.h5"
    with pytest.raises(fetch.FetchError, match="interrupted"):
        fetch.download(f"{url}/{rel}", dest, rf, progress=False)
    part = dest.with_name("audio_train.h5.part")
    size = (SHARED / rel).stat().st_size
    assert not dest.exists() and 0 < part.stat().st_size < size
    have = part.stat().st_size
    fetch.download(f"{url}/{rel}", dest, rf, progress=False)
    assert faults.requests[-1] == (rel, f"bytes={have}-")
    assert dest.read_bytes() == (SHARED / rel).read_bytes() and not part.exists()


@needs_real
def test_files_absent_on_the_mirror_are_reported(server, tmp_path):
    url, _ = server
    with pytest.raises(fetch.FetchError, match=r"1 of 12 files failed:\n.*text_train_emb.h5: HTTP 404"):
        fetch.fetch_dataset(declared("youtube"), to=tmp_path, mirror=url, progress=False, log=lambda m: None)
    assert (tmp_path / "mfn-h5" / "youtube" / "text_test_emb.h5").is_file()


def test_offline_fails_fast_with_the_files_and_where_to_put_them(tmp_path):
    # a port on 127.0.0.1 that nothing listens on: connection refused, like having no network
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(fetch.OfflineError) as e:
        fetch.fetch_dataset(
            declared("ict-mmmo"),
            to=tmp_path,
            mirror=f"http://127.0.0.1:{port}",
            progress=False,
            timeout=5,
            log=lambda m: None,
        )
    msg = str(e.value)
    assert "cannot connect" in msg and "mfn-h5/mmmo/audio_train.h5" in msg and str(tmp_path) in msg
    assert not any(tmp_path.rglob("*.h5"))


def test_mirror_from_environment_and_config(tmp_path, monkeypatch):
    monkeypatch.delenv("MFM_BENCH_MIRROR", raising=False)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[mirrors]\nmfn-h5 = "http://a.example/mfn"\ncmu-mosei = "http://b.example/mosei"\n')
    monkeypatch.setenv("MFM_BENCH_CONFIG", str(cfg))
    assert fetch.mirror_for("youtube", "mfn-h5") == "http://a.example/mfn"
    assert fetch.mirror_for("cmu-mosei", "csd") == "http://b.example/mosei"
    monkeypatch.setenv("MFM_BENCH_MIRROR", "http://c.example")
    assert fetch.mirror_for("youtube", "mfn-h5") == "http://c.example"


def test_datasets_without_public_files_explain_where_to_put_them():
    with pytest.raises(fetch.FetchError, match=r"no pinned public download.*pkl/: iemocap_data.pkl \(.*USC SAIL"):
        fetch.fetch_dataset(declared("iemocap"))
    csd = declared("cmu-mosei", modalities=["audio"]).format("csd")
    assert csd.folder == "csd/CMU_MOSEI" and csd.mirror_dir == "CMU_MOSEI"
    assert [(f.name, f.role) for f in csd.files] == [
        ("CMU_MOSEI_TimestampedWordVectors.csd", "words"),
        ("CMU_MOSEI_COVAREP.csd", "audio"),
        ("CMU_MOSEI_Labels.csd", "labels"),
    ]
    assert csd.files[1].url == "http://immortal.multicomp.cs.cmu.edu/CMU-MOSEI/acoustic/CMU_MOSEI_COVAREP.csd"
