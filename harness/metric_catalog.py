"""What each metric means for a leaderboard: the declarations of every producer, gathered in one catalog.

A :class:`Metric` names a metric (or every metric with a prefix: ``"probe_*"``), says whether higher is better
and which leaderboard section shows it. A :class:`MetricSet` is a named metric function that a task selects with
``Task(..., metrics="NAME")``. The core declares what it computes itself (:data:`CORE`); plugins declare theirs
through the ``register_metrics`` hook (see ``mfm_bench.hookspecs``).

This module imports neither numpy nor torch, so reading a leaderboard's declarations stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .registry import PluginError, _load_ref, get_registry

#: Sections with a fixed place on the leaderboard. Any other section string is the heading of a table of its own,
#: one row per model and condition where the section's metrics were measured.
TASK, COST, PROBES = "task", "cost", "probes"
Display = Literal["score", "count", "size"]


@dataclass(frozen=True)
class Metric:
    """One declared metric. ``name`` is exact, or a prefix when it ends in ``*`` (``"recon_missing_*"``).

    ``higher_is_better``: True, False, or None (no direction: never ranked). ``section``: :data:`TASK` (the main
    table), :data:`COST` (the main table's right end), :data:`PROBES`, or the heading of a table of its own.
    ``label``: a short column header (default: the name). ``display``: ``score`` (mean ± std, 3 decimals),
    ``count`` (a whole number) or ``size`` (k / M). ``rank``: mark the best mean in bold.
    """

    name: str
    higher_is_better: bool | None
    section: str = TASK
    label: str = ""
    display: Display = "score"
    rank: bool = True
    help: str = ""
    package: str = "mfm-bench"

    def matches(self, metric: str) -> bool:
        return metric.startswith(self.name[:-1]) if self.name.endswith("*") else metric == self.name

    def same_meaning(self, other: Metric) -> bool:
        keys = ("higher_is_better", "section", "display", "rank")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


@dataclass(frozen=True)
class MetricSet:
    """A named metric function ``function(prediction: ndarray, target: ndarray, task) -> {metric: value}``.

    ``resampled``, optional: the same metrics over many resamples at once, ``resampled(prediction, target, task)``
    with arrays of shape (R, n, ...) (R resamples of the n samples) returning ``{metric: ndarray of shape (R,)}``,
    NaN where ``function`` gives NaN. The test-sample bootstrap (:func:`mfm_bench.stats.bootstrap_ci`) uses it
    instead of calling ``function`` R times. Either may be a ``"module:attr"`` string, imported on first use.
    """

    name: str
    function_ref: Any
    help: str = ""
    package: str = "mfm-bench"
    resampled_ref: Any = None

    @property
    def function(self) -> Callable[..., dict[str, float]]:
        return _load_ref(self.function_ref)

    @property
    def resampled(self) -> Callable[..., dict[str, Any]] | None:
        return _load_ref(self.resampled_ref) if self.resampled_ref is not None else None


#: The metrics the core computes itself: generic task metrics, training cost, the evaluator's linear probes.
CORE: tuple[Metric, ...] = (
    Metric("mae", False, help="mean absolute error (unclipped)"),
    Metric("corr", True, help="Pearson correlation"),
    Metric("acc", True, help="classification accuracy"),
    Metric("f1_weighted", True, help="F1 weighted by class support"),
    Metric("f1_macro", True, help="unweighted mean of per-class F1"),
    Metric("mse", False, help="mean squared error"),
    Metric("params", False, COST, display="size", rank=False, help="trainable parameters"),
    Metric("train_samples_per_sec", True, COST, label="samples/s", display="count", help="training throughput"),
    Metric("train_seconds", False, COST, label="train s", display="count", rank=False, help="training wall time"),
    Metric(
        "infer_ms_per_sample",
        False,
        COST,
        label="ms/sample",
        rank=False,
        help="inference time per test sample, over every condition",
    ),
    Metric(
        "peak_rss_mb",
        False,
        COST,
        label="peak RSS MB",
        display="count",
        rank=False,
        help="peak resident memory of the process by the end of the run (CPU RSS)",
    ),
    Metric(
        "cuda_peak_mb",
        False,
        COST,
        label="CUDA MB",
        display="count",
        rank=False,
        help="CUDA memory allocated at most during the run (GPU runs only)",
    ),
    Metric(
        "best_epoch",
        None,
        COST,
        label="best ep",
        display="count",
        rank=False,
        help="epoch whose weights were kept (lowest validation label loss)",
    ),
    Metric(
        "label_loss",
        False,
        COST,
        label="valid loss",
        rank=False,
        help="lowest validation selection loss over the epochs (the label loss, or the total under select_on: "
        "total): the loss that chose the kept weights; a search's default metric",
    ),
    Metric(
        "pruned_epoch",
        None,
        COST,
        label="pruned ep",
        display="count",
        rank=False,
        help="a search trial stopped by the search's pruner: the last epoch it trained",
    ),
    Metric(
        "probe_*",
        True,
        PROBES,
        help="linear probe: test R² of a true factor from a learned code (probe_<factor>_from_<code>)",
    ),
)


@dataclass
class Catalog:
    """Every declared metric (in declaration order: core first, then plugins in load order) and metric set."""

    metrics: list[Metric] = field(default_factory=list)
    sets: dict[str, MetricSet] = field(default_factory=dict)

    def add(self, m: Metric) -> None:
        taken = next((d for d in self.metrics if d.name == m.name), None)
        if taken is None:
            self.metrics.append(m)
        elif not taken.same_meaning(m):
            raise PluginError(
                f"metric {m.name!r} is declared twice with different meanings: by {taken.package} "
                f"({_describe(taken)}) and by {m.package} ({_describe(m)}); make them agree or "
                "rename one"
            )

    def add_set(self, s: MetricSet) -> None:
        taken = self.sets.get(s.name)
        if taken is not None:
            raise PluginError(
                f"metric set {s.name!r} is registered twice: by {taken.package} and by {s.package}; "
                "uninstall one or rename it"
            )
        self.sets[s.name] = s

    def find(self, metric: str) -> Metric | None:
        """The declaration of ``metric`` (``<target>/<metric>`` reads ``<metric>``): exact, else longest prefix."""
        base = metric.split("/")[-1]
        exact = [d for d in self.metrics if d.name == base]
        if exact:
            return exact[0]
        prefixes = [d for d in self.metrics if d.name.endswith("*") and d.matches(base)]
        return max(prefixes, key=lambda d: len(d.name)) if prefixes else None

    def position(self, metric: str) -> int | None:
        """Index of the exact declaration of ``metric`` (its column order), None for prefixes and unknown names."""
        return next((i for i, d in enumerate(self.metrics) if d.name == metric), None)


def _describe(m: Metric) -> str:
    way = {True: "higher is better", False: "lower is better", None: "no direction"}[m.higher_is_better]
    return f"{way}, section {m.section!r}"


_UNSET: Any = object()


def _registrar(cat: Catalog, package: str) -> Callable[..., None]:
    def register(
        name: str,
        higher_is_better: Any = _UNSET,
        section: str = TASK,
        help: str = "",
        label: str = "",
        display: Display = "score",
        rank: bool = True,
        function: Any = None,
        resampled: Any = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"{package} declared a metric with an invalid name {name!r}")
        if function is not None:
            if higher_is_better is not _UNSET:
                raise PluginError(
                    f"{package}: metric set {name!r} takes function= and help= only; declare each "
                    "metric it returns with its own register(name, higher_is_better, ...) call"
                )
            cat.add_set(MetricSet(name, function, help, package, resampled))
            return
        if resampled is not None:
            raise PluginError(f"{package}: metric {name!r}: resampled= goes with function=, for a metric set")
        if higher_is_better not in (True, False, None):
            raise PluginError(
                f"{package}: metric {name!r} needs higher_is_better=True, False or None (no direction), "
                f"or function= for a metric set; got {higher_is_better!r}"
            )
        if display not in ("score", "count", "size"):
            raise PluginError(f"{package}: metric {name!r}: display must be score, count or size, not {display!r}")
        cat.add(Metric(name, higher_is_better, section, label, display, rank, help, package))

    return register


_LAST: tuple[list[Any], Catalog] | None = None  # (the registry and its plugin objects, their catalog)


def catalog() -> Catalog:
    """The core's declarations plus every loaded plugin's ``register_metrics``; rebuilt when plugins change."""
    global _LAST
    reg = get_registry()
    loaded = [reg, *(obj for _, obj in reg.pm.list_name_plugin())]
    if _LAST is not None and len(_LAST[0]) == len(loaded) and all(a is b for a, b in zip(_LAST[0], loaded)):
        return _LAST[1]
    cat = Catalog()
    for m in CORE:
        cat.add(m)
    for impl in reg.pm.hook.register_metrics.get_hookimpls():  # in load order
        package = reg.dists.get(impl.plugin_name, (impl.plugin_name, ""))[0]
        impl.function(register=_registrar(cat, package))
    _LAST = (loaded, cat)
    return cat


def declaration(metric: str) -> Metric | None:
    """The declaration that covers ``metric``, or None when no producer declared it."""
    return catalog().find(metric)


def higher_is_better(metric: str) -> bool | None:
    """True/False as declared for ``metric`` (exact name, prefix, or ``<target>/<metric>``); None when unknown."""
    d = declaration(metric)
    return None if d is None else d.higher_is_better


def metric_set(name: str) -> MetricSet:
    """The registered metric set ``name``; an error listing the registered ones when there is none."""
    sets = catalog().sets
    if name not in sets:
        known = ", ".join(sorted(sets)) or "none"
        raise PluginError(
            f"metric set {name!r} is not registered (registered: {known}); a task names a metric set "
            "that a plugin declares with the register_metrics hook"
        )
    return sets[name]
