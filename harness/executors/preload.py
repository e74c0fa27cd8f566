"""What every worker of a local pool needs before its first run (``local.py``): torch and the runner. The fork
server imports them once, and each worker forked from it starts with them in memory; a spawned worker imports them
while the main process does its own checks and imports. (The Trainer's optimizer does not import ``torch._dynamo``,
about 1 s more: ``mfm_bench.optim``.)"""

import torch  # noqa: F401

from .. import runner  # noqa: F401
