"""Atomic file writing, the one copy every writer uses: readers see the old file or the new one, never half of one.

with atomic_path(dest) as tmp:     # any writer that wants a path (h5py, numpy)
    h5py.File(tmp, "w")...
atomic_write(dest, text_or_bytes)  # the common case
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` in one rename.

    The parent folder is created. On an exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` is the temporary file's ending, for writers that add their own (``numpy.savez`` appends ``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = None
    try:
        # inside the try: a Ctrl-C or SIGTERM (raised as KeyboardInterrupt) landing right after the file is made
        # still removes it; only the few bytecodes between mkstemp's return and the assignment are left open
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        tmp = Path(name)
        os.close(fd)
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if name is not None:
            Path(name).unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
