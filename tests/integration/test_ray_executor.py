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
def test_no_running_cluster_is_one_line_naming_our_option(write_suite, tmp_path):
    """`--ray-address auto` with no cluster: one line naming --ray-address, not an output-folder error."""
    import os
    import subprocess
    import sys

    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # Ray's "auto" finds a cluster by its processes: this test runs before the session's
        pytest.skip("the session's Ray cluster is already up; run this test alone or first")
    suite = write_suite(SUITE.replace("EPOCHS", "1"))
    # Ray looks for a cluster's address file in its temporary folder: an empty one is a machine with no cluster
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(tmp_path / "ray")}
    cmd = [sys.executable, "-m", "mfm_bench.cli", "run", str(suite), "--out", str(tmp_path / "o"), "--no-progress"]
    p = subprocess.run(
        [*cmd, "--executor", "ray", "--ray-address", "auto"], capture_output=True, text=True, env=env, timeout=120
    )
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == (
        "error: --ray-address auto: no running Ray cluster found (start one with `ray start --head`, or drop "
        "--ray-address to start a local one)"
    )
    assert not (tmp_path / "o").exists()  # connected before the output folder is made: no empty store left


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


def _no_cluster_yet(monkeypatch):
    """This process as if Ray were not initialized (the session's cluster may be), so the executor connects."""
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **k: pytest.fail("ray.init called on an address that does not answer"))


def test_an_address_where_nothing_answers_fails_at_once(tmp_path, monkeypatch):
    import socket
    import time

    _no_cluster_yet(monkeypatch)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(ExecutorError, match=rf"--ray-address 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}"):
        make_executor(Execution(kind="ray", address=f"127.0.0.1:{port}"), tmp_path, 1)
    assert time.perf_counter() - t0 < 6
    monkeypatch.setenv("RAY_ADDRESS", f"ray://127.0.0.1:{port}")
    with pytest.raises(ExecutorError, match=rf"^RAY_ADDRESS ray://127.0.0.1:{port}: nothing answers"):
        make_executor(Execution(kind="ray"), tmp_path, 1)
    with pytest.raises(ExecutorError, match="not a Ray cluster address"):
        make_executor(Execution(kind="ray", address="headnode"), tmp_path, 1)


@pytest.mark.slow
def test_a_request_no_node_can_meet_is_refused(tmp_path, ray_cluster):
    """A run asking for a GPU (or more CPUs than any node has) on the two-CPU cluster: refused, not queued forever."""
    with pytest.raises(ExecutorError, match=r"1 CPU and 0.25 GPU .* no node of the cluster has that .*2 CPU / 0 GPU"):
        make_executor(Execution(kind="ray", gpus=0.25), tmp_path, 1)
    with pytest.raises(ExecutorError, match="asks Ray for 4 CPU and 0 GPU"):
        make_executor(Execution(kind="ray", cpus=4), tmp_path, 1)
    assert make_executor(Execution(kind="ray", cpus=2), tmp_path, 1).slots == 1
