"""SIGTERM handlers set for the length of a block: ``mfm-bench run`` turns a SIGTERM into an interrupt that marks
the runs in flight (:func:`mfm_bench.runner.sigterm_as_interrupt`), ``align`` and ``prepare`` into one that removes
the file being written (:func:`mfm_bench.align.output.sigterm_as_interrupt`), and a pool forks its workers under the
default action (``runner._sigterm_default``)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sigterm_handler(handler: Callable[[int, Any], Any] | int) -> Iterator[None]:
    """``handler`` for SIGTERM inside the block, the previous one after it. Only the main thread may set one: in
    another, the block runs with the handler the process has."""
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
