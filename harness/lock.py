"""One writer per output folder: ``mfm-bench run`` holds an exclusive lock on ``OUT/.lock`` while it runs.

The lock is an ``fcntl.flock`` on the file, so the kernel releases it when the holder dies, even by ``kill -9``.
The file holds the holder's pid, host and start time (JSON): a second process is refused with them, and a
process that finds the lock free but the file naming a dead pid on the same host says it takes that stale lock
over. Readers (``leaderboard``, ``evaluate``) never take the lock: every file they read is written atomically
and the result store is SQLite (whole transactions or nothing).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MfmBenchError

LOCK_NAME = ".lock"


class OutputLockedError(MfmBenchError):
    """Another live process holds the lock on the output folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {started}"


class OutputLock:
    """``with OutputLock(folder, log):`` holds the folder's lock; raises :class:`OutputLockedError` if another
    process holds it, ending with ``way_on``: what to do besides waiting (run's default names its ``--out``)."""

    def __init__(
        self, folder: str | Path, log: Callable[[str], None] = print, way_on: str = "or choose another --out"
    ) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.log = log
        self.way_on = way_on
        self.fd: int | None = None

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(os.pread(self.fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = self._read()
            os.close(self.fd)
            self.fd = None
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise OutputLockedError(
                f"{self.path.parent} is in use by another mfm-bench run ({_describe(holder)}); wait for it to end, "
                f"{self.way_on}"
            ) from None
        self._take_over(self._read())
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(me).encode(), 0)
        os.fsync(self.fd)

    def _take_over(self, previous: dict[str, Any]) -> None:
        """The lock was free; a file still naming another process means that process died holding it."""
        pid = previous.get("pid")
        if not pid or pid == os.getpid():
            return
        if previous.get("host") == socket.gethostname() and _alive(int(pid)):
            return  # alive but not holding the lock: it released it normally (file not yet cleared)
        self.log(f"taking over a stale lock on {self.path.parent} left by {_describe(previous)} (no longer running)")

    def release(self) -> None:
        if self.fd is None:
            return
        import fcntl

        os.ftruncate(self.fd, 0)  # an empty file: nobody holds it
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
