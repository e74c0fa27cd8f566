"""The prepared-split cache: Hugging Face ``datasets`` (Arrow files, memory-mapped) keyed by a fingerprint.

A fingerprint hashes the dataset name, the identity of every source file (resolved path, size, modification
time), the resolved parameters and the preparation code version. The second load of the same data with the same
parameters reads only the Arrow files; changing any of the three prepares anew. Entries live in
``cache_home()/<dataset>/<fingerprint>/`` with a ``meta.json`` and one Arrow folder per split, written to a
temporary folder and moved into place only when complete.

``datasets`` is used rather than ``np.save`` because its Arrow files are memory-mapped, typed, self-describing
and readable by other tools; the cache holds nothing that needs pickling.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mfm_bench.errors import MfmBenchError

from .paths import cache_home
from .prepare import SplitArrays


class CacheError(MfmBenchError):
    """A prepared-data cache entry that cannot be read (a broken Arrow file); clearing it fixes it."""


FORMAT_VERSION = 1  # of the cache layout itself


def fingerprint(name: str, sources: list[Path], params: dict[str, Any], code_version: str) -> str:
    """A hex digest of the dataset name, the source files' identities, the params and the code version."""
    h = hashlib.sha256()
    files = []
    for p in sorted(Path(s).resolve() for s in sources):
        st = p.stat()
        files.append([str(p), st.st_size, st.st_mtime_ns])
    blob = {"name": name, "files": files, "params": params, "code": code_version, "layout": FORMAT_VERSION}
    h.update(json.dumps(blob, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def _features(s: SplitArrays):
    import datasets as hd

    feats = {}
    for m, x in s.inputs.items():
        feats[f"x_{m}"] = hd.Array2D(shape=tuple(x.shape[1:]), dtype="float32")
        feats[f"mask_{m}"] = hd.Sequence(hd.Value("bool"), length=int(x.shape[1]))
    t = s.target
    if t.ndim == 2:
        feats["target"] = hd.Sequence(hd.Value("float32"), length=int(t.shape[1]))
    else:
        feats["target"] = hd.Value("int64" if t.dtype.kind in "iub" else "float32")
    feats["id"] = hd.Value("string")
    return hd.Features(feats)


def _save_split(s: SplitArrays, folder: Path) -> None:
    import datasets as hd

    cols: dict[str, Any] = {}
    for m, x in s.inputs.items():
        cols[f"x_{m}"] = np.ascontiguousarray(x, dtype=np.float32)
        cols[f"mask_{m}"] = np.ascontiguousarray(s.mask[m], dtype=bool)
    cols["target"] = s.target
    cols["id"] = [str(i) for i in s.ids]
    ds = hd.Dataset.from_dict(cols, features=_features(s))
    ds.save_to_disk(str(folder))


def _load_split(folder: Path, modalities: list[str]) -> SplitArrays:
    import datasets as hd

    ds = hd.load_from_disk(str(folder)).with_format("numpy")
    cols = ds[:]
    target = np.asarray(cols["target"])
    if target.dtype.kind == "f":
        target = target.astype(np.float32)
    return SplitArrays(
        inputs={m: np.asarray(cols[f"x_{m}"], dtype=np.float32) for m in modalities},
        mask={m: np.asarray(cols[f"mask_{m}"], dtype=bool) for m in modalities},
        target=target,
        ids=[str(i) for i in cols["id"]],
    )


def load_or_build(
    name: str,
    sources: list[Path],
    params: dict[str, Any],
    code_version: str,
    build: Callable[[], dict[str, SplitArrays]],
    root: Path | None = None,
    use_cache: bool = True,
) -> tuple[dict[str, SplitArrays], dict[str, Any]]:
    """The prepared splits, from the cache when a complete entry exists, else from ``build()`` (then stored).

    Returns ``(splits, info)`` where ``info`` has ``fingerprint``, ``path`` and ``hit`` (True when read from cache).
    """
    import datasets as hd

    was_enabled = hd.is_progress_bar_enabled()
    hd.disable_progress_bars()  # "Saving the dataset" bars, one per split, say nothing useful here
    try:
        return _load_or_build(name, sources, params, code_version, build, root, use_cache)
    finally:
        if was_enabled:
            hd.enable_progress_bars()


def _load_or_build(name, sources, params, code_version, build, root, use_cache):
    fp = fingerprint(name, sources, params, code_version)
    root = Path(root) if root is not None else cache_home()
    final = root / name / fp
    info = {"fingerprint": fp, "path": str(final), "hit": False}
    meta_file = final / "meta.json"
    if use_cache and meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            splits = {s: _load_split(final / s, meta["modalities"]) for s in meta["splits"]}
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - pyarrow's ArrowInvalid, a missing file, bad JSON: all a broken entry
            first = str(e).splitlines()[0] if str(e) else ""
            raise CacheError(
                f"the prepared-data cache entry {final} is unreadable ({type(e).__name__}: {first}); "
                f"clear it with `mfm-bench cache clear {name}` and run again"
            ) from None
        info["hit"] = True
        return splits, info
    splits = build()
    if not use_cache:
        return splits, info
    tmp = root / name / f".tmp-{fp}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise CacheError(
            f"cannot write the prepared-data cache: {tmp.parent} ({e.strerror or e}); set MFM_BENCH_CACHE to a "
            "folder that can be written, or give the dataset the param cache: false"
        ) from None
    try:
        for s, arr in splits.items():
            _save_split(arr, tmp / s)
        first = next(iter(splits.values()))
        meta = {
            "dataset": name,
            "fingerprint": fp,
            "splits": list(splits),
            "modalities": list(first.inputs),
            "sizes": {s: len(a) for s, a in splits.items()},
            "params": params,
            "code_version": code_version,
            "sources": [str(Path(p).resolve()) for p in sources],
            "source_files": _identities(sources),  # what the fingerprint hashed: `cache ls` tells a stale entry
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        try:
            os.replace(tmp, final)
        except OSError:  # another process stored the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return splits, info


def _identities(sources: list[Path]) -> list[list[Any]]:
    """[resolved path, size, mtime_ns] of each source file, as :func:`fingerprint` hashes them."""
    out = []
    for p in sorted(Path(s).resolve() for s in sources):
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def stale_reason(meta: dict[str, Any], code_version: str | None = None) -> str:
    """Why the entry ``meta`` describes would not be used again, or ``""``: a source file gone or changed
    since it was prepared (size or modification time; for entries written before the identities were kept, a
    modification after the entry's creation), or ``code_version`` (the dataset's current one, when known)
    differing from the one it was prepared with. Such an entry only takes disk space."""
    if code_version is not None and meta.get("code_version") not in (None, code_version):
        return f"prepared by code version {meta['code_version']}, now {code_version}"
    kept = meta.get("source_files")
    created = None
    if kept is None:  # an entry of an older release: paths and the creation time only
        created = _created(meta.get("created", ""))
        kept = [[p, None, None] for p in meta.get("sources", [])]
    for path, size, mtime in kept:
        p = Path(path)
        if not p.is_file():
            return f"source gone: {path}"
        st = p.stat()
        if size is None:
            if created is not None and st.st_mtime > created:
                return f"source changed after the entry was made: {path}"
        elif (st.st_size, st.st_mtime_ns) != (size, mtime):
            return f"source changed: {path}"
    return ""


def _created(stamp: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_entries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every complete cache entry: dataset, fingerprint, sizes, bytes on disk, creation time, path."""
    root = Path(root) if root is not None else cache_home()
    out = []
    for meta_file in sorted(root.glob("*/*/meta.json")):
        if meta_file.parent.name.startswith(".tmp-"):  # a preparation interrupted before its rename
            continue
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        meta["path"] = str(meta_file.parent)
        meta["bytes"] = _size(meta_file.parent)
        out.append(meta)
    return out


def code_versions(names: set[str]) -> dict[str, str]:
    """{dataset: the code version its cache entries are keyed by now} for the registered datasets among
    ``names`` whose factory tells it (``cache_code_version()``)."""
    from mfm_bench.registry import PluginError, get_registry

    reg, out = get_registry(), {}
    for name in names:
        try:
            version = getattr(reg.get("dataset", name).factory, "cache_code_version", None)
        except PluginError:  # its plugin is not installed any more
            continue
        if version is not None:
            out[name] = version()
    return out


def clear_stale(root: Path | None = None, dataset: str | None = None) -> int:
    """Delete the entries :func:`stale_reason` marks (of ``dataset``, or all); returns how many."""
    entries = [e for e in list_entries(root) if dataset is None or e["dataset"] == dataset]
    versions = code_versions({e["dataset"] for e in entries})
    n = 0
    for e in entries:
        if stale_reason(e, versions.get(e["dataset"])) and is_entry(Path(e["path"])):
            shutil.rmtree(e["path"])
            n += 1
    return n


def leftovers(root: Path | None = None) -> list[Path]:
    """The ``.tmp-*`` folders that interrupted (killed) preparations left under the cache root."""
    root = Path(root) if root is not None else cache_home()
    return sorted(p for p in root.glob("*/.tmp-*") if p.is_dir() and not p.is_symlink())


def is_entry(folder: Path) -> bool:
    """Whether ``folder`` is a cache entry (``<dataset>/<fingerprint>/`` with its ``meta.json``) or one left
    half-written (``<dataset>/.tmp-<fingerprint>-<pid>/``), never anything else a mistaken
    ``$MFM_BENCH_CACHE`` (the data home, a home folder) may hold."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    return folder.name.startswith(".tmp-") or (folder / "meta.json").is_file()


def clear(root: Path | None = None, dataset: str | None = None) -> int:
    """Delete the entries of ``dataset`` (or all); returns how many entry folders were removed. Only cache
    entries are deleted (:func:`is_entry`): other folders under the cache root are left as they are."""
    root = Path(root) if root is not None else cache_home()
    if not root.is_dir():
        return 0
    n = 0
    for ds_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if dataset is not None and ds_dir.name != dataset:
            continue
        removed = [e for e in list(ds_dir.iterdir()) if is_entry(e)]
        for entry in removed:
            shutil.rmtree(entry)
            n += not entry.name.startswith(".tmp-")
        if removed and not any(ds_dir.iterdir()):
            ds_dir.rmdir()
    return n
