from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests' models are tiny: one intra-op thread is faster than two and does not oversubscribe a shared CI
# machine (set before torch is imported; subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def dummy():
    """The dummy model plugin, registered for one test."""
    from mfm_bench.testing import dummy_plugin, temporary_plugin

    with temporary_plugin(dummy_plugin, "mfm-bench-dummy") as reg:
        yield reg


@pytest.fixture
def write_suite(tmp_path):
    """write_suite(text) -> path of a suite file in a temporary folder."""
    def write(text: str, name: str = "suite.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write
