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
        ``factory.describe(cfg)`` returns that ``DatasetSpec`` without reading data (``mfm-bench validate``
        refuses a dataset without it), and optionally ``factory.declare(cfg)`` its files
        (``mfm_bench.contracts.DatasetFactory``).
    :return: nothing.
    """


@hookspec
def register_models(register):
    """Called once at plugin discovery to add whole models.

    :param register: ``register(name, factory, config=None, help="")``.
        ``factory(spec: DatasetSpec, cfg)`` returns an ``nn.Module`` whose ``forward(batch)`` returns a
        ``mfm_bench.Output`` (prediction, weighted losses with the task loss under ``"label"``, extras).
        The module may also define ``write_artifacts(dataset, run_dir, device)``: the runner calls it after
        evaluation to write files of the model's own into the run folder (MFM: its generation grid); it returns
        metric rows ``(condition, split, metric, value)`` that are stored with the run's other metrics.
    :return: nothing.
    """


@hookspec
def register_metrics(register):
    """Called when metric declarations are first needed (scoring a task, writing a store row or a leaderboard),
    and again after the set of loaded plugins changed, to declare the metrics a plugin produces.

    A plugin declares every metric it puts in the result store, whether its model returns it
    (``extras["metric_sums"]``) or its dataset's task selects it; the leaderboard reads each metric's direction and
    section from these declarations (and from the store's ``higher_is_better`` column, which records them).

    Why a hook and not metadata on the model's output: a leaderboard is written from the store alone, long
    after (and without) building any model, and a dataset's metric set is chosen by its task, not by a model.
    Declarations are known at discovery time, cost no torch import, and are checked for conflicts across packages.

    :param register: two forms.
        ``register(name, higher_is_better, section="task", help="", label="", display="score", rank=True)``
        declares one metric, or every metric with a prefix when ``name`` ends in ``*`` (``"recon_missing_*"``).
        ``higher_is_better`` is True, False or None (no direction). ``section`` is ``"task"`` (main table),
        ``"cost"`` (main table, right end), ``"probes"``, or any other string: the heading of a table of its own,
        one row per model and condition. ``label`` is a short column header; ``display`` is ``score``
        (mean ± std), ``count`` (whole number) or ``size`` (k/M); ``rank=False`` never bolds a best value.
        ``register(name, function=f, help="")`` registers a metric set: ``f(prediction, target, task)`` (numpy
        arrays and a ``mfm_bench.Task``) returns ``{metric: value}``; a task selects it with
        ``Task(..., metrics=name)``. ``f`` may be a ``"module:attr"`` string, imported on first use. Optionally
        ``resampled=g``: the same metrics over R resamples at once, ``g(prediction, target, task)`` with arrays of
        shape (R, n, ...) returning ``{metric: array of R values}`` (NaN where ``f`` gives NaN); the test-sample
        bootstrap then scores its resamples (1,000 by default) a block at a time instead of calling ``f`` for each.
        A name declared twice with a different meaning, or a metric set registered twice, is an error naming
        both packages.
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


# -- run lifecycle: experiment trackers (TensorBoard, MLflow, your own) ------------------------------------------
# Called for every run by the runner. Each implementation is called on its own: one that raises is reported as a
# ``mfm_bench.tracking.TrackerWarning`` naming the plugin and never fails or loses the run (the SQLite store stays
# the source of truth). ``run["trackers"]`` lists the trackers the suite enables (``trackers: [tensorboard]``).


@hookspec
def on_run_start(run, out):
    """Called in the main process when a run starts, after it is marked running in the store and before its data
    is built (the run itself may train in a worker process or on a Ray cluster).

    :param run: ``{"id", "suite", "label", "dataset_label", "config", "environment", "trackers"}``: the run id, the
        suite name, the model's label, the dataset's label, the fully resolved run config, the environment
        recorded for it so far (the executor; the full one is in the store when the run ends), and the tracker
        names the suite enables.
    :param out: the output folder (a ``pathlib.Path``); write tracker files under it.
    :return: nothing.
    """


@hookspec
def on_epoch_end(run_id, epoch, metrics):
    """Called after each training epoch, once its validation loss is known: as the epoch ends with the in-process
    executor (``--jobs 1``), all at once when the run ends with worker processes or Ray (always in the main process).

    :param run_id: the run's id.
    :param epoch: the epoch just finished (1-based).
    :param metrics: the epoch's history row: ``train_<term>`` and ``valid_<term>`` losses and ``lr`` (floats).
    :return: nothing.
    """


@hookspec
def on_run_end(run_id, status, metrics):
    """Called once when a run that started ends, after its result is in the store (also when Ctrl-C
    lands between the two: then with the stored status, not ``interrupted``).

    :param run_id: the run's id.
    :param status: ``finished``, ``failed`` or ``interrupted``.
    :param metrics: ``{"<condition>/<metric>": value}`` of the test split and cost rows (empty unless finished).
    :return: nothing.
    """
