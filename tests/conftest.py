from __future__ import annotations

import inspect
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


@pytest.fixture
def recorded_as():
    """recorded_as(folder, **fields): every run of ``folder``'s store rewritten as if made elsewhere, ``fields``
    merged into its recorded environment (another CPU, commit, torch)."""
    import json
    import sqlite3

    def rewrite(folder: Path, **fields) -> None:
        con = sqlite3.connect(Path(folder) / "results.sqlite")
        try:
            for rid, env in con.execute("SELECT id, environment FROM runs").fetchall():
                con.execute("UPDATE runs SET environment = ? WHERE id = ?", (json.dumps(json.loads(env) | fields), rid))
            con.commit()
        finally:
            con.close()

    return rewrite


def _uses_alignment(module) -> bool:
    """Whether a test module imported anything from mfm_bench.align (a module, function or class)."""
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith("mfm_bench.align"):
            return True
    return False


@pytest.fixture(scope="session", autouse=True)
def numba_kernels(request):
    """Compile (or load from Numba's disk cache) the alignment kernels once per session, before the first test,
    when any collected test uses mfm_bench.align: no single test then pays the JIT time in its own timing."""
    modules = {item.module for item in request.session.items if getattr(item, "module", None) is not None}
    if any(_uses_alignment(m) for m in modules):
        from mfm_bench.align.pipeline import warm_kernels

        warm_kernels()
