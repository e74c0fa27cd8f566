"""Fixtures shared by the post-run tests (``test_posthoc_*.py``, ``test_compare.py``): one small finished output
folder, made once per session by ``mfm-bench run`` as a user makes it, and copies of it for tests that write."""

import shutil

import pytest

#: One model, two seeds (a paired comparison and a partial re-evaluation need two), one epoch on a tiny
#: synthetic-factors: two runs in a few seconds. The formats include html, so report.html is written as
#: `mfm-bench run` writes it.
POSTHOC_SUITE = """\
name: posthoc
datasets:
  - name: synthetic-factors
    params: {n_train: 48, n_valid: 16, n_test: 24, dims: {text: 6, audio: 3, visual: 4}}
models:
  - {name: supervised, label: late, params: {fusion: late}}
seeds: [0, 1]
train: {epochs: 1, batch_size: 32, device: cpu}
evaluate: {conditions: [clean]}
report: {formats: [markdown, json, html]}
"""


@pytest.fixture(scope="session")
def posthoc_suite():
    """The text of the suite :func:`posthoc_out` ran (a test that needs a variant edits a copy of it)."""
    return POSTHOC_SUITE


@pytest.fixture(scope="session")
def posthoc_out(tmp_path_factory):
    """The finished output folder of :data:`POSTHOC_SUITE`, shared by every test of the session: read it, or write
    into :func:`posthoc_copy`, never into it."""
    from mfm_bench.cli import main

    tmp = tmp_path_factory.mktemp("posthoc")
    (tmp / "suite.yaml").write_text(POSTHOC_SUITE)
    assert main(["run", str(tmp / "suite.yaml"), "--out", str(tmp / "out"), "--no-progress"]) == 0
    return tmp / "out"


@pytest.fixture
def posthoc_copy(posthoc_out, tmp_path):
    """A copy of :func:`posthoc_out` of this test's own, to write into."""
    copy = tmp_path / "out"
    shutil.copytree(posthoc_out, copy)
    return copy


@pytest.fixture(scope="session")
def run_folder():
    """run_folder(out, label, seed) -> the run folder (OUT/runs/<id>) of that model and seed."""
    from mfm_bench.results import ResultStore

    def find(out, label, seed):
        with ResultStore(out, readonly=True) as store:
            (run_id,) = [r["id"] for r in store.runs() if r["label"] == label and r["seed"] == seed]
        return out / "runs" / run_id

    return find
