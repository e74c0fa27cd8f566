"""Data pickles read without running their code.

A pickle can execute arbitrary code when loaded, so :func:`safe_load` uses an unpickler that resolves only the
globals NumPy arrays and plain containers need (array reconstruction, dtypes, scalars, ``OrderedDict``...) and
refuses every other one with :class:`UnsafePickleError`, naming the file and the refused global. The layouts of
particular pickles are read by the dataset plugins that know them.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from mfm_bench.errors import MfmBenchError

#: (module, name) pairs a data pickle may reference. Everything else is refused.
ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
    ("builtins", "bytearray"),
    ("builtins", "slice"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 2 store bytes
}
#: NumPy scalar types (numpy.float64 ...) are plain data too.
_NUMPY_SCALARS = {
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "longdouble",
    "complex64",
    "complex128",
    "str_",
    "bytes_",
}
#: NumPy dtype classes (numpy.dtypes.Float64DType ...) pickled by NumPy 2.
_NUMPY_DTYPES_MODULE = "numpy.dtypes"


class UnsafePickleError(MfmBenchError, pickle.UnpicklingError):
    """The pickle references a global outside the allow-list (it could run code when loaded)."""


class PickleFormatError(MfmBenchError, ValueError):
    """A pickle that loads safely but is not laid out as a processed multimodal dataset."""


class _Restricted(pickle.Unpickler):
    def __init__(self, file, source: str) -> None:
        super().__init__(file, encoding="latin1")  # latin1: NumPy arrays pickled by Python 2
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol-2 names of Python 2 builtins
        ok = (module, name) in ALLOWED
        ok = ok or (module == "numpy" and name in _NUMPY_SCALARS)
        ok = ok or (module == _NUMPY_DTYPES_MODULE and name.endswith("DType"))
        if not ok:
            raise UnsafePickleError(
                f"{self.source}: refused to load global {module}.{name}: data pickles may hold only NumPy arrays and "
                f"plain containers. This file may run code when loaded; do not open it with pickle.load, and get a "
                f"clean copy of the data"
            )
        return super().find_class(module, name)


def safe_load(path: Path | str) -> Any:
    """Load ``path`` allowing only NumPy arrays and plain containers (see module docstring)."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return _Restricted(f, str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
            raise PickleFormatError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e
        except MemoryError:
            size = path.stat().st_size / 2**30
            raise PickleFormatError(
                f"{path}: not enough memory to load this {size:.1f} GiB pickle; use a machine "
                "with more memory, or a smaller file (fewer modalities)"
            ) from None
