"""What every worker of a local pool needs before its first run (``local.py``): torch, the runner, and
``torch._dynamo``, which constructing any torch optimizer imports (about 1 s of a worker's 2 s start-up on 2
cores). The fork server imports it once, and each worker forked from it starts with all of it in memory; a spawned
worker imports it while the main process does its own checks and imports."""

import torch  # noqa: F401

from .. import runner  # noqa: F401

try:
    import torch._dynamo  # noqa: F401
except ImportError:  # a torch build without it: the first optimizer will not need it either
    pass
