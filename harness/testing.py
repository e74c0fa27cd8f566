"""Helpers for testing plugins, for mfm-bench itself and for plugin authors.

``temporary_plugin(obj, name)`` registers a plugin object (a module or an object with ``@hookimpl`` methods) in
the process-wide registry and always unregisters it::

    from mfm_bench.testing import temporary_plugin

    def test_my_encoder():
        with temporary_plugin(my_plugin_module, "my-plugin"):
            ...  # build it through the registry, run a tiny suite ...

``dummy_plugin`` is a ready-made plugin with a tiny model (``dummy``) whose behaviour a test can steer:
``fail: nan`` returns a NaN loss, ``fail: raise`` raises, ``fail: interrupt`` raises KeyboardInterrupt.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from . import hookimpl
from .config import option
from .registry import get_registry


@contextmanager
def temporary_plugin(obj: Any, name: str, package: str | None = None, version: str = "0") -> Iterator[Any]:
    """Register ``obj`` as plugin ``name`` for the duration of the block."""
    reg = get_registry()
    try:
        reg.add_plugin(obj, name, package or name, version)
        yield reg
    finally:
        reg.remove_plugin(name)


@dataclass
class DummyConfig:
    hidden: int = option(8, "width of the single hidden layer")
    fail: Literal["none", "nan", "raise", "interrupt"] = option("none", "misbehave on purpose: nan, raise or interrupt")


def _dummy_model(spec: Any, cfg: DummyConfig) -> Any:
    import torch
    from torch import nn

    from .contracts import Output
    from .nn import Head, masked_mean, task_loss

    class DummyModel(nn.Module):
        """Masked means of every modality, concatenated, then a head."""

        def __init__(self) -> None:
            super().__init__()
            self.names = spec.modality_names
            self.head = Head(spec.task, sum(spec.input_dims.values()), cfg.hidden)

        def forward(self, batch: Any) -> Any:
            if cfg.fail == "raise":
                raise RuntimeError("dummy model failure")
            if cfg.fail == "interrupt":
                raise KeyboardInterrupt
            h = torch.cat([masked_mean(batch.inputs[m], batch.mask[m]) for m in self.names], dim=-1)
            pred = self.head(h)
            loss = task_loss(spec.task, pred, batch.target)
            if cfg.fail == "nan":
                loss = loss * float("nan")
            return Output(pred, {"label": loss})

    return DummyModel()


class _DummyPlugin:
    @hookimpl
    def register_models(self, register: Any) -> None:
        register("dummy", _dummy_model, config=DummyConfig, help="tiny test model (masked means + head)")


dummy_plugin = _DummyPlugin()
