"""Every hook of mfm-bench, grouped by phase. Plugins implement them with ``@mfm_bench.hookimpl``.

Each ``register_*`` hook is called once, when the plugin manager is first built (``mfm_bench.registry.get_registry()``),
in the order plugins were loaded. It receives ``register(name, factory, config=None, help="")``, a callable that
refuses a name already taken (naming both packages) and records which distribution added it.

``config`` is an optional dataclass whose fields are the plugin's parameters, each with its one default and
``metadata={"help": ...}``. With a config the registry validates suite params against it (unknown keys, wrong
types), fills defaults (so run ids are stable) and calls ``factory(*args, cfg)`` with the dataclass instance;
without one it calls ``factory(*args, **params)`` and validates nothing.
"""

from __future__ import annotations

import pluggy

PROJECT = "mfm_bench"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def register_encoders(register):
    """Called once at plugin discovery to add unimodal encoders.

    :param register: ``register(name, factory, config=None, help="")``.
        ``factory(input_dim, cfg)`` returns an ``nn.Module`` with attribute ``output_dim`` whose
        ``forward(x [B, T, D], mask [B, T] bool)`` returns ``(pooled [B, H], sequence [B, T, H])``.
    :return: nothing.
    """


@hookspec
def register_fusions(register):
    """Called once at plugin discovery to add fusion modules.

    :param register: ``register(name, factory, config=None, help="")``.
        ``factory(input_dims: dict[str, int], cfg)`` returns an ``nn.Module`` with attributes ``output_dim``
        and ``input_kind`` (``"pooled"``: receives each modality's pooled encoding [B, H];
        ``"sequence"``: each encoder's sequence [B, T, H]; ``"raw"``: the raw inputs [B, T, D], no encoder), whose
        ``forward(inputs: dict[str, Tensor], mask: dict[str, Tensor [B, T]])`` returns the fused vector [B, output_dim].
        A factory whose class sets ``predicts = True`` also receives ``out_dim`` (the task's width) as a
        keyword, which the model passes through ``registry.build(..., context={"out_dim": ...})``, and returns
        predictions directly (late fusion).
    :return: nothing.
    """


@hookspec
def register_datasets(register):
    """Called once at plugin discovery to add datasets.

    :param register: ``register(name, factory, config=None, help="")``.
        ``factory(cfg)`` returns an object with ``.spec`` (a ``mfm_bench.DatasetSpec``) and ``.split(name)``
        returning a torch Dataset of samples (``mfm_bench.TensorSplit`` where the data fit in memory).
    :return: nothing.
    """


@hookspec
def register_models(register):
    """Called once at plugin discovery to add whole models.

    :param register: ``register(name, factory, config=None, help="")``.
        ``factory(spec: DatasetSpec, cfg)`` returns an ``nn.Module`` whose ``forward(batch)`` returns a
        ``mfm_bench.Output`` (prediction, weighted losses with the task loss under ``"label"``, extras).
    :return: nothing.
    """


@hookspec
def register_commands(register):
    """Called once at plugin discovery to add ``mfm-bench`` subcommands.

    :param register: ``register(name, target, help)``. ``target`` is ``"package.module"`` or
        ``"package.module:attr"`` naming an object with ``add_arguments(parser: argparse.ArgumentParser)`` and
        ``run(args: argparse.Namespace) -> int`` (the exit status), and optionally ``DESCRIPTION`` and ``EPILOG``
        strings for the command's own ``--help``. ``help`` (one line, required) is listed by ``mfm-bench --help``.
        The target is imported only when its command is run or its ``--help`` asked for, so ``mfm-bench --help``
        never imports torch. A name taken by a built-in or another plugin is an error naming both. ``run`` reports
        a user's mistake by raising a ``mfm_bench.errors.MfmBenchError`` subclass: the CLI prints it as one
        ``error: ...`` line and exits 2.
    :return: nothing.
    """
