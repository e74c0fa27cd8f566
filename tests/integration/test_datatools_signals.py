"""A SIGTERM (``kill``, ``timeout``, a batch scheduler) to `mfm-bench align` or `prepare` leaves no hidden
temporary file behind, in the main process or in a background writer, as Ctrl-C does not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mfm_bench.align import write_csd
from mfm_bench.align.output import BackgroundWriters, WriteError
from mfm_bench.align.synthetic import SyntheticConfig, make_sequences
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


SCRIPT = """
import sys, time
import mfm_bench.align as align
from mfm_bench.io import atomic_path

def slow(path, seq):
    with atomic_path(path, suffix=".npz") as tmp:
        tmp.write_bytes(b"half a file")
        print("writing", flush=True)
        time.sleep(60)

align.write_npz = slow
from mfm_bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_terminated_align_command_removes_the_file_it_was_writing(tmp_path):
    seqs = make_sequences(SyntheticConfig.tiny(n_videos=2, seed=4))
    paths = [f"{n}={write_csd(tmp_path / f'{n}.csd', seqs[n])}" for n in ("words", "acoustic")]
    out = tmp_path / "out"
    args = ["align", "--no-progress", "--reference", "words", "--out", str(out), "--format", "npz"]
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), *args, "--write-workers", "0", *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "interrupted" in err, err
    assert list(out.iterdir()) == []
