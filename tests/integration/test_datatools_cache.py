"""`mfm-bench cache clear` deletes cache entries only, whatever folder $MFM_BENCH_CACHE points at."""

from __future__ import annotations

import numpy as np

from mfm_bench.cli import main
from mfm_bench.data.cache import list_entries, load_or_build
from mfm_bench.data.prepare import SplitArrays


def _splits():
    x = np.ones((3, 2, 4), np.float32)
    s = SplitArrays({"audio": x}, {"audio": np.ones((3, 2), bool)}, np.zeros(3, np.int64), ["a", "b", "c"])
    return {"train": s}


def test_cache_clear_all_leaves_folders_that_are_not_cache_entries(tmp_path, monkeypatch, capsys):
    # the usual mix-up: MFM_BENCH_CACHE set to the data home
    root = tmp_path / "data"
    raw = root / "mfn-h5" / "mmmo"
    raw.mkdir(parents=True)
    (raw / "audio_train.h5").write_bytes(b"raw data")
    (root / "empty" / "sub").mkdir(parents=True)
    src = tmp_path / "src.h5"
    src.write_bytes(b"x")
    load_or_build("toy", [src], {"p": 1}, "toy:1", _splits, root=root)
    (root / "toy" / ".tmp-abc-123").mkdir()  # what a killed preparation leaves
    assert len(list_entries(root)) == 1
    monkeypatch.setenv("MFM_BENCH_CACHE", str(root))

    assert main(["cache", "clear", "--all"]) == 0
    assert "removed 1 cache entry" in capsys.readouterr().out
    assert (raw / "audio_train.h5").read_bytes() == b"raw data"
    assert (root / "empty" / "sub").is_dir()
    assert not (root / "toy").exists() and list_entries(root) == []

    assert main(["cache", "clear", "mfn-h5"]) == 0
    assert "removed 0 cache entries" in capsys.readouterr().out
    assert (raw / "audio_train.h5").is_file()


def test_cache_ls_reports_unfinished_entries_apart(tmp_path, monkeypatch, capsys):
    root = tmp_path / "cache"
    src = tmp_path / "src.h5"
    src.write_bytes(b"x")
    _, kept = load_or_build("toy", [src], {"p": 1}, "toy:1", _splits, root=root)
    _, killed = load_or_build("toy", [src], {"p": 2}, "toy:1", _splits, root=root)
    # killed after its meta.json was written, before the rename into place
    (root / "toy" / killed["fingerprint"]).rename(root / "toy" / f".tmp-{killed['fingerprint']}-4242")
    monkeypatch.setenv("MFM_BENCH_CACHE", str(root))
    assert [e["fingerprint"] for e in list_entries(root)] == [kept["fingerprint"]]
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert kept["fingerprint"] in out and killed["fingerprint"] not in out
    assert "1 unfinished entry" in out and "cache clear --all" in out
    assert main(["cache", "clear", "toy"]) == 0 and not (root / "toy").exists()


def test_a_cache_root_that_cannot_be_written_names_it_and_the_fix(tmp_path):
    from mfm_bench.data.cache import CacheError

    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    src = tmp_path / "src.h5"
    src.write_bytes(b"x")
    try:
        load_or_build("toy", [src], {}, "toy:1", _splits, root=a_file)
    except CacheError as e:
        assert f"cannot write the prepared-data cache: {a_file / 'toy'}" in str(e) and "cache: false" in str(e)
    else:
        raise AssertionError("no CacheError")
    splits, info = load_or_build("toy", [src], {}, "toy:1", _splits, root=a_file, use_cache=False)
    assert not info["hit"] and len(splits["train"]) == 3


def test_cache_ls_marks_stale_entries_and_clear_stale_removes_only_them(tmp_path, monkeypatch, capsys):
    """An entry prepared from a source file that changed or is gone since, or by another code version of its
    dataset, is never read again: `cache ls` marks it stale with the reason, `cache clear --stale` removes it."""
    import json
    import os

    from mfm_bench.registry import get_registry

    root = tmp_path / "cache"
    monkeypatch.setenv("MFM_BENCH_CACHE", str(root))
    now = get_registry().get("dataset", "youtube").factory.cache_code_version()
    srcs = {k: tmp_path / f"{k}.h5" for k in ("same", "edited", "gone", "old", "code")}
    for p in srcs.values():
        p.write_bytes(b"x")
    fp = {}
    for k, p in srcs.items():
        _, info = load_or_build("youtube", [p], {"k": k}, "youtube:0" if k == "code" else now, _splits, root=root)
        fp[k] = info["fingerprint"]
    srcs["edited"].write_bytes(b"xy")
    srcs["gone"].unlink()
    old_meta = root / "youtube" / fp["old"] / "meta.json"  # as an older release wrote it: no source identities
    meta = json.loads(old_meta.read_text())
    del meta["source_files"]
    meta["created"] = "2020-01-01T00:00:00+0000"
    old_meta.write_text(json.dumps(meta))
    os.utime(srcs["old"])  # modified after 2020

    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    rows = {k: next(line for line in out.splitlines() if line.startswith("youtube") and fp[k] in line) for k in fp}
    assert rows["same"].rstrip().endswith(" ok")
    assert f"stale: source changed: {srcs['edited']}" in rows["edited"]
    assert f"stale: source gone: {srcs['gone']}" in rows["gone"]
    assert "stale: source changed after the entry was made" in rows["old"]
    assert f"stale: prepared by code version youtube:0, now {now}" in rows["code"]
    assert "4 stale entries" in out and "cache clear --stale" in out

    assert main(["cache", "clear", "--stale"]) == 0
    assert "removed 4 stale cache entries" in capsys.readouterr().out
    assert [e["fingerprint"] for e in list_entries(root)] == [fp["same"]]
