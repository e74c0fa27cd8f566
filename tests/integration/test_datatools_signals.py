"""A SIGTERM (``kill``, ``timeout``, a batch scheduler) to a background writer of `mfm-bench align` leaves no
hidden temporary file behind. (The command itself, stopped by SIGTERM or Ctrl-C while it writes:
``test_a_stopped_align_exits_128_plus_the_signal`` in test_align_pipeline.py.)"""

from __future__ import annotations

import os
import signal
import time

import pytest

from mfm_bench.align.output import BackgroundWriters, WriteError
from mfm_bench.io import atomic_path

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="background writers need fork")


def _slow_write(path, started):
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"half a file")
        started.write_text("x")
        time.sleep(60)


def _wait_for(path, seconds=20.0):
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_a_terminated_background_writer_removes_its_temporary_file(tmp_path):
    out, started = tmp_path / "out", tmp_path / "started"
    out.mkdir()
    writers = BackgroundWriters(1)
    writers.submit("facet", _slow_write, out / "facet.csd", started)
    _wait_for(started)
    (child, _, _) = writers._running[0]
    os.kill(child.pid, signal.SIGTERM)
    with pytest.raises(WriteError, match="writing facet failed"):
        writers.wait()
    assert list(out.iterdir()) == []
