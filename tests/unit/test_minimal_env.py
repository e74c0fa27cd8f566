"""The GPU checks run where a machine has its own torch and none of the optional-looking dependencies
(docs/performance.md, "On a GPU machine without a network"): the registry, the synthetic data, MFM and the Trainer
import and train without ``jsonschema``, ``datasets``, ``platformdirs`` and ``isal``."""

import subprocess
import sys

BLOCKED = ("jsonschema", "datasets", "platformdirs", "isal")

SCRIPT = f"""
import sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # importing it raises ImportError
from mfm_bench.registry import get_registry
from mfm_bench.training import TrainConfig, Trainer
reg = get_registry()
data = reg.build("dataset", "synthetic-factors", n_train=32, n_valid=16, n_test=16,
                 dims={{"text": 6, "audio": 3, "visual": 4}}, seq_len=5, min_len=3)
net = reg.build("model", "mfm", data.spec, preset="mmsa")
result = Trainer(TrainConfig(epochs=1, batch_size=16, early_stop=0, device="cpu", threads=1)).fit(
    net, data.split("train"), data.split("valid"))
print("trained", result.samples_per_sec > 0, sorted(m for m in {BLOCKED!r} if sys.modules.get(m) is not None))
"""


def test_mfm_trains_without_the_suite_cache_and_align_dependencies():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "trained True []"
