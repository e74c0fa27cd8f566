"""One base class for every error a user can cause and fix: the CLI prints it as one ``error: ...`` line.

``MfmBenchError`` subclasses say what went wrong and how to fix it in their message. ``exit_code`` is what
``mfm-bench`` exits with (2: bad input or environment). Anything that is not an ``MfmBenchError`` is a bug and
keeps its traceback.
"""

from __future__ import annotations


class MfmBenchError(Exception):
    """Base of every user-facing error (bad suite, unknown plugin, missing data, failed download...)."""

    exit_code = 2


__all__ = ["MfmBenchError"]
