"""Is a data file what its name says? A few header bytes tell HDF5 (``.h5``, ``.csd``) and pickle (``.pkl``)
apart from anything else, so a suite pointing at ``/etc/passwd`` or a truncated download fails at ``validate``.
A ``.csd`` file must also have the computational-sequence layout: a top-level group with ``data`` and
``metadata``.
"""

from __future__ import annotations

from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: where HDF5 looks for its signature (a user block moves it to 512, 1024, 2048 ...)
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096)
#: first bytes of a pickle: PROTO (protocol 2+), or the opcodes a protocol 0/1 pickle of a dict or list starts with
_PICKLE_STARTS = (b"\x80", b"(", b"}", b"]", b"c")


def _head(path: Path, n: int = 4104) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def is_hdf5(head: bytes) -> bool:
    return any(head[o : o + 8] == HDF5_SIGNATURE for o in _HDF5_OFFSETS)


def csd_layout_problem(path: Path) -> str | None:
    """None when ``path`` opens with h5py and has a top-level group holding ``data`` and ``metadata``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            roots = list(f.keys())
            if not any(isinstance(f[r], h5py.Group) and {"data", "metadata"} <= set(f[r].keys()) for r in roots):
                return "is HDF5 but not a computational sequence (no top-level group with data and metadata)"
    except OSError as e:
        return f"is not a readable HDF5 file ({e})"
    return None


def format_problem(path: Path) -> str | None:
    """Why ``path`` is not in the format its suffix names (``.h5``, ``.csd``, ``.pkl``), or None."""
    suffix = path.suffix.lower()
    if suffix not in (".h5", ".hdf5", ".csd", ".pkl", ".pickle"):
        return None
    try:
        head = _head(path)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not head:
        return "is empty"
    if suffix in (".pkl", ".pickle"):
        return None if head.startswith(_PICKLE_STARTS) else "is not a pickle (no pickle header)"
    if not is_hdf5(head):
        return "is not an HDF5 file (no HDF5 signature)"
    return csd_layout_problem(path) if suffix == ".csd" else None
