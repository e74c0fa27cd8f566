"""mfm-bench: a plugin-based benchmark harness for multimodal representation learning.

Public API: ``hookimpl`` for plugins, the data contracts, and the entry points of the core
(``load_suite``, ``run_suite``, ``get_registry``). torch is imported only when the contracts are used.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("mfm_bench")

_LAZY = {
    "Modality": "contracts",
    "Task": "contracts",
    "DatasetSpec": "contracts",
    "Batch": "contracts",
    "Output": "contracts",
    "TensorSplit": "contracts",
    "collate": "contracts",
    "get_registry": "registry",
    "Registry": "registry",
    "PluginError": "registry",
    "load_suite": "suite",
    "Suite": "suite",
    "SuiteError": "suite",
    "run_suite": "runner",
    "MfmBenchError": "errors",
}

__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mfm_bench.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mfm_bench' has no attribute {name!r}")
