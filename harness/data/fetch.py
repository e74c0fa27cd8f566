"""Downloads of the public dataset files: resume, progress bar, verification, atomic placement.

- Each file is written to ``<dest>.part``; an existing ``.part`` is resumed with an HTTP ``Range`` request (a
  server that ignores it sends the whole file, which is then written from the start).
- When complete, the file is checked against its pinned hash (git blob sha1 for the MFN h5 files, sha256 where
  known; files without a published hash must at least be readable HDF5). Only a verified file is moved into
  place (``os.replace``); a file that fails is deleted, never cached.
- Sources: the pinned public URLs (:mod:`mfm_bench.data.manifests`), or a mirror laid out like the format's
  folder in the data home (``<mirror>/mmmo/audio_train.h5`` for the MFN h5 files). Mirrors come from
  ``--mirror``, ``$MFM_BENCH_MIRROR`` or the ``[mirrors]`` table of the user config (key: dataset name or
  format name).
- Without network the first connection error stops everything at once, with the list of files needed and where
  to put them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import MfmBenchError
from . import manifests
from .paths import data_home, load_user_config

USER_AGENT = "mfm-bench-fetch/1"
CHUNK = 1 << 16


class FetchError(MfmBenchError, RuntimeError):
    """A download that could not complete; the message says what to do."""


class VerificationError(FetchError):
    """A downloaded file whose content does not match its pinned hash (it was deleted, not cached)."""


class OfflineError(FetchError):
    """No connection to the source at all."""


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: where it comes from, where it goes (relative to the data home) and its hash."""

    url: str
    local: str  # relative to the data home, e.g. "mfn-h5/mmmo/audio_train.h5"
    mirror_path: str  # relative to a mirror's base URL, e.g. "mmmo/audio_train.h5"
    git_blob: str | None = None
    sha256: str | None = None
    size: int | None = None


# -- hashing and verification ---------------------------------------------------------------------------------
def git_blob_sha1(path: Path | str) -> str:
    """git's object id of a file: sha1 of ``b"blob <size>\\0"`` followed by its bytes."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, rf: RemoteFile) -> None:
    """Raise :class:`VerificationError` unless ``path`` matches ``rf``'s pinned hash (or is HDF5 when none)."""
    if rf.size is not None and path.stat().st_size != rf.size:
        raise VerificationError(f"{rf.local}: {path.stat().st_size} bytes, expected {rf.size}")
    if rf.git_blob:
        got = git_blob_sha1(path)
        if got != rf.git_blob:
            raise VerificationError(f"{rf.local}: git blob id {got}, expected {rf.git_blob} (corrupt or altered copy)")
    if rf.sha256:
        got = sha256_file(path)
        if got != rf.sha256:
            raise VerificationError(f"{rf.local}: sha256 {got}, expected {rf.sha256} (corrupt or altered copy)")
    if not rf.git_blob and not rf.sha256 and rf.local.endswith((".h5", ".csd")):
        import h5py

        if not h5py.is_hdf5(str(path)):
            raise VerificationError(f"{rf.local}: not an HDF5 file (an error page or a truncated download?)")


# -- one file -----------------------------------------------------------------------------------------------
def download(url: str, dest: Path, rf: RemoteFile, progress: bool | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, move it into place; returns ``dest``."""
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # nothing left to send: the .part is complete
            resp = None
        else:
            raise FetchError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise OfflineError(f"{url}: cannot connect ({reason})") from None
    if resp is not None:
        with resp:
            resumed = start > 0 and resp.status == 206
            if not resumed:
                start = 0
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            got = start
            with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                disable=None if progress is None else not progress, file=sys.stderr, leave=False,
            ) as bar:
                try:
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as e:
                    raise FetchError(f"{url}: interrupted after {got} bytes ({type(e).__name__}); run the same "
                                     f"command again to resume from {part}") from None
            if total is not None and got < total:
                raise FetchError(f"{url}: interrupted after {got} of {total} bytes; run the same command again "
                                 f"to resume from {part}")
    try:
        verify(part, rf)
    except VerificationError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


# -- what a dataset needs -------------------------------------------------------------------------------------
_MFN_PREFIX = {"text": "text_", "audio": "audio_", "visual": "video_"}
FETCHABLE = {"cmu-mosi": ("mfn-h5", "csd"), "ict-mmmo": ("mfn-h5",), "youtube": ("mfn-h5",),
             "pom": ("mfn-h5", "csd"), "cmu-mosei": ("csd",)}


def plan(dataset: str, fmt: str | None = None, modalities: list[str] | None = None) -> list[RemoteFile]:
    """The files ``dataset`` needs in format ``fmt`` (default: the first fetchable one) for ``modalities``."""
    if dataset not in FETCHABLE:
        raise FetchError(_no_public_source(dataset))
    fmt = fmt or FETCHABLE[dataset][0]
    if fmt not in FETCHABLE[dataset]:
        raise FetchError(f"{dataset}: no public {fmt} files to download; fetchable formats: {', '.join(FETCHABLE[dataset])}")
    mods = list(modalities) if modalities else ["text", "audio", "visual"]
    out = []
    if fmt == "mfn-h5":
        for repo_path, local, blob, size in manifests.mfn_files_for(dataset):
            name = local.rsplit("/", 1)[-1]
            if name.startswith(("y_", "X_")) or any(name.startswith(_MFN_PREFIX[m]) for m in mods):
                out.append(RemoteFile(f"{manifests.MFN_BASE_URL}/{repo_path}", f"mfn-h5/{local}", local, blob, None, size))
    else:
        folder = {"cmu-mosi": "CMU_MOSI", "cmu-mosei": "CMU_MOSEI", "pom": "POM"}[dataset]
        defaults = {"text": "glove_vectors", "audio": "COVAREP",
                    "visual": "FACET 4.1" if dataset == "cmu-mosi" else "FACET 4.2"}
        table = manifests.CSD_FILES[dataset]
        # the word vectors time the words (the alignment reference), so they are needed even without text
        feats = ["glove_vectors", *[defaults[m] for m in mods if m != "text"], "labels"]
        for feature in feats:
            name = manifests.csd_local_name(table[feature])
            out.append(RemoteFile(manifests.CMU_BASE_URL + table[feature], f"csd/{folder}/{name}", f"{folder}/{name}"))
    return out


def _no_public_source(dataset: str) -> str:
    where = {
        "moud": "mfn-h5/moud/ in the MFN folder layout (audio_*.h5, video_*.h5, text_*_emb.h5, y_*.h5, key d1)",
        "iemocap": "pkl/ as iemocap_data.pkl (aligned) or iemocap_data_noalign.pkl, the Multimodal Transformer's "
                   "processed IEMOCAP (IEMOCAP itself is licensed by USC SAIL on request)",
    }.get(dataset, "the folder its plugin documents")
    return (f"{dataset}: there is no pinned public download; obtain the files from their owners and put them in "
            f"{data_home()}/{where}")


def mirror_for(dataset: str, fmt: str) -> str | None:
    """The configured mirror: ``$MFM_BENCH_MIRROR``, else the user config's ``[mirrors]`` entry for the dataset
    or the format."""
    env = os.environ.get("MFM_BENCH_MIRROR", "").strip()
    if env:
        return env
    mirrors = load_user_config().get("mirrors", {})
    return mirrors.get(dataset) or mirrors.get(fmt)


def fetch_dataset(
    dataset: str,
    to: Path | None = None,
    fmt: str | None = None,
    modalities: list[str] | None = None,
    mirror: str | None = None,
    progress: bool | None = None,
    timeout: float = 30.0,
    log=None,
) -> list[Path]:
    """Download every missing or unverified file of ``dataset`` into ``to`` (default: the data home).

    Files that fail (HTTP error, verification) are reported together at the end in one :class:`FetchError`; a
    connection failure stops at once with the list of files needed and where they go.
    """
    root = Path(to).expanduser() if to is not None else data_home()
    files = plan(dataset, fmt, modalities)
    fmt = fmt or FETCHABLE[dataset][0]
    base = mirror or mirror_for(dataset, fmt)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    done, failures = [], []
    for rf in files:
        dest = root / rf.local
        if dest.is_file():
            try:
                verify(dest, rf)
                done.append(dest)
                continue
            except VerificationError as e:
                say(f"re-downloading {rf.local}: {e}")
                dest.unlink()
        url = f"{base.rstrip('/')}/{rf.mirror_path}" if base else rf.url
        try:
            done.append(download(url, dest, rf, progress=progress, timeout=timeout))
            say(f"ok  {rf.local}")
        except OfflineError as e:
            missing = [f.local for f in files if not (root / f.local).is_file()]
            raise OfflineError(
                f"{e}\nNo connection, so nothing more was tried. {dataset} needs these files under {root}:\n  "
                + "\n  ".join(missing)
                + f"\nDownload them from {rf.url.rsplit('/', 1)[0]}/... (or a mirror: --mirror URL, MFM_BENCH_MIRROR, "
                "or [mirrors] in the user config) and put them there, or point MFM_BENCH_DATA at a copy"
            ) from None
        except FetchError as e:
            failures.append(str(e))
            say(f"FAILED {rf.local}: {e}")
    if failures:
        raise FetchError(f"{dataset}: {len(failures)} of {len(files)} files failed:\n  " + "\n  ".join(failures))
    return done


def prefetch_suite(suite, registry=None, log=None) -> None:
    """For ``fetch: true`` suites: download, before any training, whatever each dataset of ``suite`` lacks.

    Datasets whose plugins cannot fetch (generated data, third-party plugins without ``ensure_data``) are skipped.
    """
    from mfm_bench.registry import get_registry

    reg = registry or get_registry()
    for ref in suite.datasets:
        factory = reg.get("dataset", ref.name).factory
        ensure = getattr(factory, "ensure_data", None)
        if ensure is None:
            continue
        folder = ensure(reg.config_of("dataset", ref.name, ref.params))
        if log:
            log(f"{ref.name}: data in {folder}")
