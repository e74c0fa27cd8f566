"""One base class for every error a user can cause and fix: the CLI prints it as one ``error: ...`` line.

``MfmBenchError`` subclasses say what went wrong and how to fix it in their message. ``exit_code`` is what
``mfm-bench`` exits with (2: bad input or environment). Anything that is not an ``MfmBenchError`` is a bug and
keeps its traceback. Subclasses keep a builtin secondary base (``ValueError``, ``FileNotFoundError``...) where
callers catch that.
"""

from __future__ import annotations


class MfmBenchError(Exception):
    """Base of every user-facing error (bad suite, unknown plugin, missing data, failed download...)."""

    exit_code = 2


class MissingFileError(MfmBenchError, FileNotFoundError):
    """A file or folder the user named (or must create first) is not there."""


class OutputExistsError(MfmBenchError, FileExistsError):
    """An output that would be overwritten without being asked to."""


__all__ = ["MfmBenchError", "MissingFileError", "OutputExistsError"]
