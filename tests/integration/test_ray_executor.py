"""The Ray executor: the same run ids and metrics as one process, on a local two-CPU Ray cluster (slow)."""

from __future__ import annotations

import builtins

import pytest
from test_executors import SUITE, numbers

from mfm_bench.executors import Execution, make_executor
from mfm_bench.executors.base import ExecutorError
from mfm_bench.results import ResultStore
from mfm_bench.runner import run_suite
from mfm_bench.suite import load_suite


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_ids_and_metrics_of_one_process(write_suite, tmp_path, ray_cluster):
    suite = load_suite(write_suite(SUITE.replace("EPOCHS", "3")))
    assert run_suite(suite, tmp_path / "seq", progress=False)["finished"] == 4
    counts = run_suite(suite, tmp_path / "ray", progress=False, execution=Execution(kind="ray"))
    assert counts == {"finished": 4, "failed": 0, "skipped": 0}
    (va, sa), (vb, sb) = numbers(tmp_path / "seq"), numbers(tmp_path / "ray")
    assert sa == sb and va == vb
    with ResultStore(tmp_path / "ray") as s:  # the main process wrote the files the tasks returned
        for r in s.runs():
            assert (tmp_path / "ray" / "runs" / r["id"] / "model.pt").stat().st_size > 0
            assert (tmp_path / "ray" / "runs" / r["id"] / "history.json").exists()


@pytest.mark.slow
def test_ray_tasks_ask_the_main_process_to_prune(write_suite, tmp_path, ray_cluster, monkeypatch):
    """A search with a pruner on Ray: each trial's task asks through the board actor after every epoch."""
    pytest.importorskip("optuna")
    from test_search import check_pruned_by_rule, prune_by_rule, pruned_text

    prune_by_rule(monkeypatch)
    out = tmp_path / "o"
    counts = run_suite(load_suite(write_suite(pruned_text())), out, progress=False, execution=Execution(kind="ray"))
    assert counts["failed"] == 0
    check_pruned_by_rule(out)


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ExecutorError, match=r"pip install 'mfm-bench\[ray\]'"):
        make_executor(Execution(kind="ray"), tmp_path, 1)
