"""Helpers for testing plugins, for mfm-bench itself and for plugin authors.

``temporary_plugin(obj, name)`` registers a plugin object (a module or an object with ``@hookimpl`` methods) in
the process-wide registry and always unregisters it::

    from mfm_bench.testing import temporary_plugin

    def test_my_encoder():
        with temporary_plugin(my_plugin_module, "my-plugin"):
            ...  # build it through the registry, run a tiny suite ...

``assert_no_host_reads(model, train)`` trains a model one epoch on PyTorch's meta device and fails where a step
reads a value on the host (which on a GPU makes the host wait for the device); every built-in model passes it.

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
    """Register ``obj`` as plugin ``name`` for the duration of the block.

    A module that is already registered (its package is installed, so its entry point loaded it) is left as it
    is: its names are there under its own plugin name, and the block runs with them."""
    reg = get_registry()
    if reg.pm.is_registered(obj):
        yield reg
        return
    reg.add_plugin(obj, name, package or name, version)  # a name already taken is refused, and left as it is
    try:
        yield reg
    finally:
        reg.remove_plugin(name)


def assert_no_host_reads(model: Any, train: Any, batch_size: int = 16, **train_options: Any) -> Any:
    """Train ``model`` one epoch on ``train`` (a :class:`~mfm_bench.contracts.TensorSplit`) on PyTorch's meta
    device, and raise ``AssertionError`` where a training step reads a value on the host or the epoch copies host
    memory to the device more than once. Returns the epoch's device-side loss sums.

    The meta device stands in for an accelerator on any machine: its tensors have shapes and no values, so a host
    read (``.item()``, ``float(t)``, ``bool(t)``, ``if t:``, ``.tolist()``, ``nonzero``, indexing by a boolean
    mask, ``masked_select``, ``unique``: anything whose result or output shape needs the values) raises, where on
    CUDA it would make the host wait for the GPU at every step. The one copy the epoch may
    make is the shuffled order of the samples. ``model`` moves to the meta device and loses its values: pass a
    fresh one. ``train_options``: more :class:`~mfm_bench.training.TrainConfig` fields (``grad_clip=1.0``)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from .training import TrainConfig, Trainer

    class HostToDevice(TorchDispatchMode):
        """Records every copy of host memory to another device (the shape of what was copied)."""

        def __init__(self) -> None:
            super().__init__()
            self.copies: list[tuple[int, ...]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            aten = torch.ops.aten
            if func is aten._to_copy.default and args[0].device.type == "cpu" and out.device.type != "cpu":
                self.copies.append(tuple(args[0].shape))
            elif func is aten.copy_.default and args[1].device.type == "cpu" and args[0].device.type != "cpu":
                self.copies.append(tuple(args[1].shape))
            return out

    trainer = Trainer(TrainConfig(epochs=1, batch_size=batch_size, device="meta", **train_options))
    state = trainer._start(model, seed=0)
    on_meta = train.to(trainer.device)
    watch = HostToDevice()
    try:
        with watch:
            sums = trainer._train_epoch(state, on_meta)
    except (RuntimeError, NotImplementedError, TypeError) as e:
        if "meta" not in str(e).lower():
            raise
        raise AssertionError(
            f"a training step of {type(model).__name__} needed a device value on the host ({str(e)[:200]}); the "
            "traceback above this one shows where. Keep it on the device: torch.where instead of if, masked sums "
            "instead of boolean-mask indexing or masked_select, counts as tensors. (An operation of your own that "
            "has no meta kernel stops here too: register one with torch.library.register_fake.)"
        ) from e
    assert len(watch.copies) <= 1, (
        f"the epoch copied host memory to the device {len(watch.copies)} times (shapes {watch.copies}): move data "
        "to the device once, before the epoch"
    )
    return sums


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
