"""One base class for every error a user can cause and fix: the CLI prints it as one ``error: ...`` line.

``MfmBenchError`` subclasses say what went wrong and how to fix it in their message. ``exit_code`` is what
``mfm-bench`` exits with (2: bad input or environment). Anything that is not an ``MfmBenchError`` is a bug and
keeps its traceback. Subclasses keep a builtin secondary base (``ValueError``, ``FileNotFoundError``...) where
callers catch that.
"""

from __future__ import annotations

import errno


class MfmBenchError(Exception):
    """Base of every user-facing error (bad suite, unknown plugin, missing data, failed download...)."""

    exit_code = 2


class MissingFileError(MfmBenchError, FileNotFoundError):
    """A file or folder the user named (or must create first) is not there."""


class OutputExistsError(MfmBenchError, FileExistsError):
    """An output that would be overwritten without being asked to."""


class StorageError(MfmBenchError):
    """A file or folder that cannot be written or read: a full disk, no permission, a read-only place."""


class DeprecatedParamWarning(DeprecationWarning):
    """A suite uses a param under its old name (kept working for one release). The CLI shows these, which Python
    hides for a plain DeprecationWarning outside ``__main__``."""


_REASONS = {
    errno.ENOSPC: "the disk is full; free some space and run again with --resume",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run again with --resume",
    errno.EROFS: "it is on a read-only file system; choose another --out",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "permission denied; choose a folder you can write to",
    errno.ENOTDIR: "part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
}


def storage_error(e: OSError, what: str) -> StorageError:
    """One-line :class:`StorageError` for ``e`` met while writing or reading ``what`` (a folder, a file)."""
    reason = _REASONS.get(e.errno or 0, e.strerror or str(e))
    name = f" ({e.filename})" if e.filename and str(e.filename) not in what else ""
    return StorageError(f"cannot use {what}{name}: {reason}")


def is_disk_full(e: BaseException) -> bool:
    """A full disk or quota, as an OSError or as SQLite's "database or disk is full"."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    return "disk is full" in str(e)


__all__ = [
    "DeprecatedParamWarning",
    "MfmBenchError",
    "MissingFileError",
    "OutputExistsError",
    "StorageError",
    "is_disk_full",
    "storage_error",
]
