"""What a local pool's fork server imports once, before it forks any worker (``local.py``): torch, the runner,
and ``torch._dynamo``, which constructing any torch optimizer imports (about 1 s of a worker's 2 s start-up on 2
cores). Each worker forked from the server starts with all of it in memory."""

import torch  # noqa: F401

from .. import runner  # noqa: F401

try:
    import torch._dynamo  # noqa: F401
except ImportError:  # a torch build without it: the first optimizer will not need it either
    pass
