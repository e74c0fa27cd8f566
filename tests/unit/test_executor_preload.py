"""The fork server's preload (mfm_bench.executors.preload) must leave CUDA untouched: every worker is forked from
that process, and a child forked after its parent initialised CUDA cannot use the GPU."""

import subprocess
import sys

PROBE = """
import torch
import torch.cuda as cuda

calls = []
for name in ["is_available", "device_count", "current_device", "init", "_lazy_init", "get_device_properties",
             "get_device_capability", "get_device_name", "set_device", "synchronize", "mem_get_info"]:
    if hasattr(cuda, name):
        def probe(*a, _f=getattr(cuda, name), _n=name, **k):
            calls.append(_n)
            return _f(*a, **k)
        setattr(cuda, name, probe)
import mfm_bench.executors.preload  # noqa: F401
import sys
assert "mfm_bench.runner" in sys.modules
print("CALLS", calls, "INITIALISED", cuda.is_initialized())
"""


def test_the_fork_servers_preload_imports_torch_and_the_runner_without_touching_cuda():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CALLS [] INITIALISED False" in done.stdout, done.stdout
