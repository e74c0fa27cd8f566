"""Downloads of the files a dataset plugin declares: resume, progress bar, verification, atomic placement.

The core knows no dataset: a plugin's ``declare(cfg)`` returns a :class:`~mfm_bench.contracts.DataDeclaration`
(formats, folders, files with their pinned sources and hashes) and everything here works from that.

- Each file is written to ``<dest>.part``; an existing ``.part`` is resumed with an HTTP ``Range`` request (a
  server that ignores it sends the whole file, which is then written from the start).
- When complete, the file is checked against its declared size and hashes (git blob sha1, sha256); an ``.h5``
  or ``.csd`` file without a hash must at least be readable HDF5. Only a verified file is moved into place
  (``os.replace``); a file that fails is deleted, never cached.
- Sources: the declared URLs, or a mirror serving ``<mirror>/<format's mirror_dir>/<name>``. Mirrors come from
  ``--mirror``, ``$MFM_BENCH_MIRROR`` or the ``[mirrors]`` table of the user config (key: dataset name or
  format name).
- Without network the first connection error stops everything at once, with the list of files needed and where
  to put them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from mfm_bench.errors import MfmBenchError

from .paths import data_home, load_user_config

if TYPE_CHECKING:
    from mfm_bench.contracts import DataDeclaration, DataFile, DataFormat

USER_AGENT = "mfm-bench-fetch/1"
CHUNK = 1 << 16
#: seconds to wait for a connection or for data (the one default of ``--timeout`` and every download)
DEFAULT_TIMEOUT = 30.0


class FetchError(MfmBenchError, RuntimeError):
    """A download that could not complete; the message says what to do."""


class VerificationError(FetchError):
    """A downloaded file whose content does not match its pinned hash (it was deleted, not cached)."""


class OfflineError(FetchError):
    """No connection to the source at all."""


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


def verify(path: Path, df: DataFile, where: str | None = None) -> None:
    """Raise :class:`VerificationError` unless ``path`` matches ``df``'s declared size and hashes (an ``.h5`` or
    ``.csd`` file without a hash must be HDF5). ``where`` names the file in messages (default: ``path``)."""
    where = where or str(path)
    if df.size is not None and path.stat().st_size != df.size:
        raise VerificationError(f"{where}: {path.stat().st_size} bytes, expected {df.size}")
    if df.git_blob:
        got = git_blob_sha1(path)
        if got != df.git_blob:
            raise VerificationError(f"{where}: git blob id {got}, expected {df.git_blob} (corrupt or altered copy)")
    if df.sha256:
        got = sha256_file(path)
        if got != df.sha256:
            raise VerificationError(f"{where}: sha256 {got}, expected {df.sha256} (corrupt or altered copy)")
    if not df.git_blob and not df.sha256 and df.name.endswith((".h5", ".csd")):
        import h5py

        if not h5py.is_hdf5(str(path)):
            raise VerificationError(f"{where}: not an HDF5 file (an error page or a truncated download?)")


# -- one file -----------------------------------------------------------------------------------------------
def download(
    url: str,
    dest: Path,
    df: DataFile,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    where: str | None = None,
) -> Path:
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
    except (TimeoutError, urllib.error.URLError, ConnectionError) as e:
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
            try:
                f = open(part, "ab" if resumed else "wb")
            except OSError as e:
                raise FetchError(_cannot_write(url, part, dest, e)) from None
            bar = tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=None if progress is None else not progress,
                file=sys.stderr,
                leave=False,
            )
            try:
                with f, bar:
                    got = _copy(resp, f, bar, got, url, part)
            except _WriteFailed as e:
                raise FetchError(_cannot_write(url, part, dest, e.error, e.got)) from None
            except OSError as e:  # closing (flushing) the .part file
                raise FetchError(_cannot_write(url, part, dest, e, got)) from None
            if total is not None and got < total:
                raise FetchError(
                    f"{url}: interrupted after {got} of {total} bytes; run the same command again to resume from {part}"
                )
    try:
        verify(part, df, where or dest.name)
    except VerificationError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


class _WriteFailed(Exception):
    def __init__(self, error: OSError, got: int) -> None:
        self.error, self.got = error, got


def _copy(resp, f, bar, got: int, url: str, part: Path) -> int:
    """Copy ``resp`` into the open ``.part`` file ``f``; returns the bytes now in it. A failed read is an
    interruption (resumable); a failed write raises :class:`_WriteFailed`."""
    while True:
        try:
            chunk = resp.read(CHUNK)
        except (TimeoutError, http.client.IncompleteRead, ConnectionError, OSError) as e:
            raise FetchError(
                f"{url}: interrupted after {got} bytes ({type(e).__name__}); run the same "
                f"command again to resume from {part}"
            ) from None
        if not chunk:
            return got
        try:
            f.write(chunk)
        except OSError as e:
            raise _WriteFailed(e, got) from None
        got += len(chunk)
        bar.update(len(chunk))


def _cannot_write(url: str, part: Path, dest: Path, e: OSError, got: int = 0) -> str:
    done = f" after {got} bytes" if got else ""
    return (
        f"{url}: cannot write {part} ({e.strerror or e}){done}, so {dest} was not downloaded; free space on that "
        f"disk or remove what is in the way, or give --to (or MFM_BENCH_DATA) a folder that can be written, then "
        "run the same command again (a .part file already written is resumed)"
    )


# -- what a declaration needs -------------------------------------------------------------------------------
def folder_of(fmt: DataFormat, home: Path | None = None) -> Path:
    """Where ``fmt``'s files lie: its folder, under ``home`` (default: the data home) unless absolute."""
    folder = Path(fmt.folder).expanduser()
    return folder if folder.is_absolute() else (home if home is not None else data_home()) / folder


def missing_files(fmt: DataFormat, home: Path | None = None) -> list[str]:
    """Names of ``fmt``'s declared files that are not on disk."""
    folder = folder_of(fmt, home)
    return [f.name for f in fmt.files if not (folder / f.name).is_file()]


def complete_format(decl: DataDeclaration, home: Path | None = None) -> DataFormat | None:
    """The first declared format whose files are all on disk (``None`` when none is)."""
    return next((f for f in decl.formats if f.files and not missing_files(f, home)), None)


def choose_format(decl: DataDeclaration, fmt: str | None = None) -> DataFormat:
    """Format ``fmt`` of ``decl`` (default: the first with a public source); an error says where to put files
    that cannot be downloaded."""
    if fmt is not None:
        if fmt not in [f.name for f in decl.formats]:
            raise FetchError(f"{decl.dataset}: no format {fmt!r}; it reads {', '.join(f.name for f in decl.formats)}")
        chosen = decl.format(fmt)
        if chosen.fetchable:
            return chosen
        candidates = [chosen]
    else:
        chosen = next((f for f in decl.formats if f.fetchable), None)
        if chosen is not None:
            return chosen
        candidates = list(decl.formats)
    where = "; ".join(
        f"{folder_of(f)}/: {', '.join(x.name for x in f.files)}" + (f" ({f.note})" if f.note else "")
        for f in candidates
    )
    others = [f.name for f in decl.formats if f.fetchable]
    hint = f" Formats that can be downloaded: {', '.join(others)}." if others else ""
    raise FetchError(
        f"{decl.dataset}: there is no pinned public download for these files; obtain them from their "
        f"owners and put them in {where}.{hint}"
    )


def mirror_for(dataset: str, fmt: str) -> str | None:
    """The configured mirror: ``$MFM_BENCH_MIRROR``, else the user config's ``[mirrors]`` entry for the dataset
    or the format."""
    env = os.environ.get("MFM_BENCH_MIRROR", "").strip()
    if env:
        return env
    mirrors = _mirrors()
    return mirrors.get(dataset) or mirrors.get(fmt)


def _mirrors() -> dict[str, str]:
    """The user config's ``[mirrors]`` table; a value of another type is an error naming the file and key."""
    from .paths import UserConfigError, config_file

    mirrors = load_user_config().get("mirrors", {})
    example = 'write [mirrors] and then lines such as mfn-h5 = "https://host/mfn-h5" (docs/datasets.md)'
    if not isinstance(mirrors, dict):
        raise UserConfigError(f"{config_file()}: mirrors must be a table of URLs, got {mirrors!r}; {example}")
    for key, value in mirrors.items():
        if not isinstance(value, str):
            raise UserConfigError(f"{config_file()}: [mirrors] {key} must be a URL string, got {value!r}; {example}")
    return mirrors


MIRROR_SCHEMES = ("http", "https", "ftp", "file")


def _mirror_origin(dataset: str, fmt: str) -> str:
    if os.environ.get("MFM_BENCH_MIRROR", "").strip():
        return "MFM_BENCH_MIRROR"
    from .paths import config_file

    key = dataset if _mirrors().get(dataset) else fmt
    return f"[mirrors] {key} in {config_file()}"


def check_mirror(base: str, origin: str) -> None:
    """Raise :class:`FetchError` unless ``base`` is a URL urllib can open (http, https, ftp or file); ``origin``
    names where it was set."""
    import urllib.parse

    if urllib.parse.urlsplit(base).scheme.lower() not in MIRROR_SCHEMES:
        local = Path(base).expanduser()
        hint = f" (this local folder: {local.resolve().as_uri()})" if local.is_dir() else ""
        raise FetchError(
            f"{origin}: mirror {base!r} is not a URL; give http://, https://, ftp:// or file:// followed by the "
            f"folder laid out like the format's folder{hint}"
        )


def fetch_dataset(
    decl: DataDeclaration,
    to: Path | None = None,
    fmt: str | None = None,
    mirror: str | None = None,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    log=None,
) -> list[Path]:
    """Download every missing or unverified file of format ``fmt`` of ``decl`` (default: the first format with
    a public source) into ``to`` (default: the data home).

    Files that fail (HTTP error, verification, no public source) are reported together at the end in one
    :class:`FetchError`; a connection failure stops at once with the list of files needed and where they go.
    """
    home = Path(to).expanduser() if to is not None else data_home()
    chosen = choose_format(decl, fmt)
    folder = folder_of(chosen, home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(
            f"{decl.dataset}: cannot create {folder} ({e.strerror or e}); give --to (or MFM_BENCH_DATA) a folder "
            "that can be written"
        ) from None
    base = mirror or mirror_for(decl.dataset, chosen.name)
    if base:
        check_mirror(base, "--mirror" if mirror else _mirror_origin(decl.dataset, chosen.name))
    say = log or (lambda msg: print(msg, file=sys.stderr))
    done, failures = [], []
    for df in chosen.files:
        dest, where = folder / df.name, f"{chosen.folder}/{df.name}"
        if dest.is_file():
            try:
                verify(dest, df, where)
                done.append(dest)
                continue
            except VerificationError as e:  # kept until a verified copy replaces it: a failed download loses nothing
                bad = f" (the copy there fails verification and was left as it is: {e})"
                say(f"re-downloading {where}: {e}")
        else:
            bad = ""
        if not df.url and not base:
            failures.append(f"{where}: no public source{bad}" + (f"; {chosen.note}" if chosen.note else ""))
            say(f"MISSING {where}")
            continue
        url = "/".join(p.strip("/") for p in (base, chosen.mirror_dir, df.name) if p.strip("/")) if base else df.url
        try:
            done.append(download(url, dest, df, progress=progress, timeout=timeout, where=where))
            say(f"ok  {where}")
        except OfflineError as e:
            raise OfflineError(_offline_message(e, decl.dataset, chosen, home)) from None
        except FetchError as e:
            failures.append(f"{e}{bad}")
            say(f"FAILED {where}: {e}")
    if failures:
        raise FetchError(
            f"{decl.dataset}: {len(failures)} of {len(chosen.files)} files failed:\n  " + "\n  ".join(failures)
        )
    return done


def _offline_message(err: Exception, dataset: str, fmt: DataFormat, home: Path) -> str:
    folder = folder_of(fmt, home)
    missing = [f"{fmt.folder}/{f.name}" for f in fmt.files if not (folder / f.name).is_file()]
    source = next((f.url.rsplit("/", 1)[0] for f in fmt.files if f.url), "its source")
    return (
        f"{err}\nNo connection, so nothing more was tried. {dataset} needs these files under {home}:\n  "
        + "\n  ".join(missing)
        + f"\nDownload them from {source}/... (or a mirror: --mirror URL, MFM_BENCH_MIRROR, or [mirrors] in the "
        "user config) and put them there, or point MFM_BENCH_DATA at a copy"
    )


def ensure_present(decl: DataDeclaration, log=None, **kwargs) -> Path:
    """The folder of the first complete format of ``decl``; when none is complete, fetch the default one first
    (keyword arguments as :func:`fetch_dataset`)."""
    ready = complete_format(decl)
    if ready is None:
        fetch_dataset(decl, log=log, **kwargs)
        ready = complete_format(decl)
        if ready is None:  # pragma: no cover - fetch_dataset raises when a file is still missing
            raise FetchError(f"{decl.dataset}: files still missing after the download")
    return folder_of(ready)


def prefetch_suite(suite, registry=None, log=None) -> None:
    """For ``fetch: true`` suites: download, before any training, whatever each dataset of ``suite`` lacks.

    Datasets whose plugins declare no files (generated data) are skipped. Each dataset's own params (its
    modalities, features, format) decide which files it needs.
    """
    from mfm_bench.registry import get_registry

    reg = registry or get_registry()
    for ref in suite.datasets:
        factory = reg.get("dataset", ref.name).factory
        declare = getattr(factory, "declare", None)
        if declare is None:
            continue
        decl = declare(reg.config_of("dataset", ref.name, ref.params))
        advice = getattr(factory, "FETCH_ADVICE", "")  # data the user makes: nothing to download
        if advice and complete_format(decl) is None:
            gone = [str(folder_of(f) / n) for f in decl.formats for n in missing_files(f)]
            raise FetchError(
                f"{ref.label}: {', '.join(gone)} not found, and fetch: true has nothing to download; {advice}"
            )
        folder = ensure_present(decl, log=log)
        if log:
            log(f"{ref.name}: data in {folder}")
