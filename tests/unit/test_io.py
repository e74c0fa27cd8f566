"""mfm_bench.io: the one atomic writer."""

from __future__ import annotations

import os
import stat

import pytest

from mfm_bench.io import atomic_path, atomic_write


def test_atomic_write_text_and_bytes(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_permissions_follow_the_umask_and_suffix_is_kept(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "x.npz", suffix=".npz") as tmp:
            assert tmp.name.endswith(".npz") and tmp.parent == tmp_path
            tmp.write_bytes(b"1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.npz").stat().st_mode) == 0o644


def test_an_interrupt_just_after_the_temporary_file_is_made_removes_it(tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM (raised as KeyboardInterrupt) can land before the caller's body runs, as the temporary
    file has just been made: nothing is left beside the target (a suite stopped as a run's folder was written left a
    hidden .config.json.*.tmp once)."""
    import mfm_bench.io as io_module

    real_close = os.close

    def interrupted_close(fd):
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(io_module.os, "close", interrupted_close)
    with pytest.raises(KeyboardInterrupt):
        with io_module.atomic_path(tmp_path / "config.json"):
            raise AssertionError("the body ran")
    monkeypatch.setattr(io_module.os, "close", real_close)
    assert list(tmp_path.iterdir()) == []
