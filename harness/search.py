"""Hyperparameter search with Optuna: a ``search:`` block per model of a suite.

    models:
      - name: supervised
        label: concat
        params: {encoder: mean, fusion: concat}
        search:
          params: {hidden: {low: 8, high: 64}, train.lr: {low: 1.0e-4, high: 1.0e-2, log: true},
                   fusion: {choices: [concat, late]}, encoder_params.dropout: {low: 0.0, high: 0.3}}
          sampler: tpe          # or random
          n_trials: 20
          metric: mae           # measured on the validation split (clean)
          trial_seeds: 1        # a trial's value: the mean over the suite's first N seeds
          storage: memory       # or journal: the study also in OUT/optuna-journal.log
          pruner: median        # optional: stop trials whose validation value lags, epoch by epoch

Each trial is one ordinary run per trial seed in the store (its id a hash of its config), trained on the suite's
first seed (or first ``trial_seeds`` seeds, the value then their mean), on whatever executor the suite uses; only
the main process talks to Optuna (ask and tell, an in-memory study, mirrored to a journal file with ``storage:
journal``). The store is the source of truth: ``--resume`` tells the study the finished trials again and asks
only for the rest.
Selection uses the validation split only; the chosen configuration is then trained on every seed of the suite
and reported on test. ``selection: test-oracle`` reproduces the original MFM protocol instead (each metric's
best test value over all trials) and is labelled as such, with a warning, on the leaderboard.

``pruner:`` (``median``, ``percentile``, or a mapping with Optuna's pruner settings) stops a trial after an epoch
whose validation value lags the other trials' at the same epoch: the trial's run reports the metric after every
epoch to the main process, which asks the study; a pruned run is kept in the store (evaluated on the weights
it had) and told to the study as pruned, so it is never chosen. Pruning reads one run per trial
(``trial_seeds: 1``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import MfmBenchError, OutputExistsError

SAMPLERS = ("random", "tpe")
SELECTIONS = ("validation", "test-oracle")
STORAGES = ("memory", "journal")
KEYS = (
    "params",
    "sampler",
    "n_trials",
    "metric",
    "direction",
    "selection",
    "seed",
    "trial_seeds",
    "storage",
    "pruner",
)
PRUNERS = ("median", "percentile")
#: the journal of every study of an output folder (``storage: journal``), written by the main process only
JOURNAL = "optuna-journal.log"


class SearchError(MfmBenchError):
    def __init__(self, message: str, field: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message, self.field, self.hint = message, field, hint


@dataclass
class Param:
    name: str  # a model param, or ``train.<option>``
    low: Any = None
    high: Any = None
    log: bool = False
    choices: list[Any] | None = None

    def distribution(self) -> Any:
        import optuna.distributions as d

        if self.choices is not None:
            return d.CategoricalDistribution(self.choices)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return d.IntDistribution(self.low, self.high, log=self.log)
        return d.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def examples(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class PrunerSpec:
    """Optuna's median or percentile pruner; steps are epochs (1, 2, ...). The settings after ``percentile`` and
    their defaults are Optuna's own (optuna 5.0.0, optuna/pruners/_median.py lines 77-84,
    ``MedianPruner.__init__``; _percentile.py lines 142-150, ``PercentilePruner.__init__``). ``percentile`` (kind
    percentile only) has no default in Optuna; ours is 50, which makes it the median pruner."""

    kind: str = "median"
    percentile: float = 50.0
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1

    def build(self) -> Any:
        import optuna

        common = {k: getattr(self, k) for k in PRUNER_DEFAULTS}
        if self.kind == "median":
            return optuna.pruners.MedianPruner(**common)
        return optuna.pruners.PercentilePruner(self.percentile, **common)


@dataclass
class SearchSpec:
    params: list[Param]
    n_trials: int = 20
    sampler: str = "tpe"
    metric: str = "label_loss"
    higher_is_better: bool = False
    selection: str = "validation"
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)  # {"name", "label", "params"}: the base configuration
    trial_seeds: int = 1  # a trial runs on the suite's first N seeds; its value is their mean
    storage: str = "memory"  # or "journal": the study also written to OUT/optuna-journal.log
    pruner: PrunerSpec | None = None  # stop lagging trials epoch by epoch (None: every trial runs to its end)


def parse_search(
    raw: Any,
    ref: Any,
    reg: Any,
    train: dict[str, Any],
    seeds: list[int] | None = None,
    datasets: list[Any] | None = None,
) -> SearchSpec:
    """A model's ``search:`` block, every range checked against the model's (or train's) typed config,
    ``trial_seeds`` against the suite's ``seeds`` and ``metric`` against what the suite's ``datasets`` report on
    validation, when given."""
    from .config import ConfigError
    from .metric_catalog import higher_is_better

    if not isinstance(raw, dict):
        raise SearchError(f"expected a mapping with {', '.join(KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        from .config import did_you_mean

        raise SearchError(f"unknown key {unknown[0]!r}", unknown[0], did_you_mean(unknown[0], KEYS))
    _check_choice(raw, "sampler", SAMPLERS, "tpe")
    _check_choice(raw, "selection", SELECTIONS, "validation")
    _check_choice(raw, "storage", STORAGES, "memory")
    n, trial_seeds = _positive(raw, "n_trials", 20), _positive(raw, "trial_seeds", 1)
    if seeds is not None and trial_seeds > len(seeds):
        raise SearchError(
            f"{trial_seeds} trial seeds, but the suite has {len(seeds)} seed(s)",
            "trial_seeds",
            f"at most {len(seeds)}, or add seeds",
        )
    metric = raw.get("metric", "label_loss")
    if not isinstance(metric, str) or not metric:
        raise SearchError(f"expected a metric name, got {metric!r}", "metric", "e.g. mae, acc or label_loss")
    check_metric(metric, datasets or [], reg)
    if raw.get("direction") is not None:
        _check_choice(raw, "direction", ("maximize", "minimize"), "minimize")
    hib = {"maximize": True, "minimize": False}.get(raw.get("direction"), None)
    hib = higher_is_better(metric) if hib is None else hib
    if hib is None:
        raise SearchError(f"metric {metric!r} declares no direction", "metric", "add direction: maximize or minimize")
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise SearchError("give at least one parameter range", "params", "e.g. {hidden: {low: 8, high: 64}}")
    params = [_param(name, spec) for name, spec in raw["params"].items()]
    pruner = _pruner(raw.get("pruner"))
    if pruner is not None and trial_seeds != 1:
        raise SearchError(
            f"a pruner stops a trial's run epoch by epoch, but each trial runs on {trial_seeds} seeds",
            "pruner",
            "set trial_seeds: 1, or remove the pruner",
        )
    model = {"name": ref.name, "label": ref.label, "params": ref.params}
    for p in params:
        for end, value in zip(("low", "high") if p.choices is None else ["choice"] * len(p.choices), p.examples()):
            try:
                apply({p.name: value}, model, train, reg)
            except ConfigError as e:  # e.g. "low 0 is refused: ... must be at least 1"
                if e.message.startswith("unknown key"):  # whatever the range: no end of it is to blame
                    raise SearchError(e.message, f"params.{p.name}", e.hint) from None
                raise SearchError(f"{end} {value!r} is refused: {e.message}", f"params.{p.name}", e.hint) from None
    return SearchSpec(
        params,
        n,
        raw.get("sampler", "tpe"),
        metric,
        hib,
        raw.get("selection", "validation"),
        int(raw.get("seed", 0)),
        model,
        trial_seeds=trial_seeds,
        storage=raw.get("storage", "memory"),
        pruner=pruner,
    )


def check_metric(metric: str, datasets: list[Any], reg: Any) -> None:
    """``metric`` is one the search can read: ``label_loss``, a metric a plugin declares (its producer says where
    it is reported), or one the task of every dataset reports (its metric function's names; for a dataset that
    cannot describe itself without reading its data, any of the core's task metrics)."""
    from .config import did_you_mean
    from .metric_catalog import CORE, TASK, declaration
    from .suite_checks import describe

    declared = declaration(metric)
    if metric == "label_loss" or (declared is not None and declared.name not in {m.name for m in CORE}):
        return
    core = {m.name for m in CORE if m.section == TASK and not m.name.endswith("*")}
    for ref in datasets:
        spec = describe(reg, ref)
        names = task_metrics(spec.task) if spec is not None else None
        base = metric if names is not None else metric.split("/")[-1]  # a multi-target task's <target>/<metric>
        names = names if names is not None else core
        if base not in names:
            what = (
                f"the {spec.task.kind} task of dataset {ref.label!r} does not report it"
                if spec is not None
                else "no task metric of the core is named so"
            )
            problem = f"unknown metric {metric!r}" if declared is None else f"metric {metric!r} is not a task metric"
            raise SearchError(
                f"{problem}: {what}, and no plugin declares it",
                "metric",
                did_you_mean(metric, names | {"label_loss"}),
            )


def task_metrics(task: Any) -> set[str] | None:
    """The names of the metrics ``task`` reports: its metric function (the task's metric set, or its kind's) on
    four made-up samples; None when the function cannot say (a metric set that refuses such data)."""
    import warnings

    import numpy as np

    from .metrics import compute_metrics

    n = 4
    true = np.linspace(-1.0, 1.0, n * max(1, len(task.targets))).reshape(n, -1)
    if task.kind == "classification":
        pred, true = np.eye(n, int(task.n_classes)), np.arange(n) % int(task.n_classes)
    elif task.kind == "multi_regression":
        pred = true[::-1].copy()
    else:
        true = true[:, 0]
        pred = true[::-1].copy()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return set(compute_metrics(task, pred, true))
    except Exception:  # noqa: BLE001 - a plugin's metric set: the declared metrics still pass
        return None


#: Optuna's pruner settings with their defaults (the fields of :class:`PrunerSpec` after ``kind`` and ``percentile``)
PRUNER_DEFAULTS = {f.name: f.default for f in fields(PrunerSpec) if f.name not in ("kind", "percentile")}


def _pruner(raw: Any) -> PrunerSpec | None:
    """``pruner:`` as a kind (``median``, ``percentile``), a mapping (``kind`` and Optuna's settings), or none."""
    if raw is None or raw == "none":
        return None
    if isinstance(raw, str):
        raw = {"kind": raw}
    if not isinstance(raw, dict):
        raise SearchError(f"expected a kind ({', '.join(PRUNERS)}) or a mapping, got {raw!r}", "pruner")
    allowed = ("kind", "percentile", *PRUNER_DEFAULTS)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        from .config import did_you_mean

        raise SearchError(f"unknown key {unknown[0]!r}", f"pruner.{unknown[0]}", did_you_mean(unknown[0], allowed))
    kind = raw.get("kind", "median")
    if kind not in PRUNERS:
        raise SearchError(f"must be one of {', '.join(PRUNERS)}, got {kind!r}", "pruner.kind")
    if "percentile" in raw and kind != "percentile":
        raise SearchError("percentile is a setting of kind: percentile", "pruner.percentile", "add kind: percentile")
    for key, low in (("n_startup_trials", 0), ("n_warmup_steps", 0), ("interval_steps", 1), ("n_min_trials", 1)):
        v = raw.get(key, PRUNER_DEFAULTS[key])
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise SearchError(f"expected an integer of at least {low}, got {v!r}", f"pruner.{key}")
    pct = raw.get("percentile", 50.0)
    if not isinstance(pct, (int, float)) or isinstance(pct, bool) or not 0 <= pct <= 100:
        raise SearchError(f"expected a number from 0 to 100, got {pct!r}", "pruner.percentile")
    return PrunerSpec(kind, float(pct), **{k: raw.get(k, d) for k, d in PRUNER_DEFAULTS.items()})


def _positive(raw: dict[str, Any], key: str, default: int) -> int:
    n = raw.get(key, default)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SearchError(f"expected a positive integer, got {n!r}", key)
    return n


def _check_choice(raw: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> None:
    if raw.get(key, default) not in allowed:
        raise SearchError(f"must be one of {', '.join(allowed)}, got {raw[key]!r}", key)


SHAPE = "{low: NUMBER, high: NUMBER, log: BOOL} or {choices: [...]}"


def _param(name: str, spec: Any) -> Param:
    """One range or list of choices, or an error that names what is wrong with it (and the shape)."""

    def refuse(fault: str) -> SearchError:
        return SearchError(f"{fault}; expected {SHAPE}, got {spec!r}", f"params.{name}")

    if not isinstance(spec, dict):
        raise refuse("not a range")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise refuse(f"choices goes alone, without {', '.join(sorted(set(spec) - {'choices'}))}")
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise refuse("choices: [] is empty" if spec["choices"] == [] else "choices must be a list")
        return Param(name, choices=list(spec["choices"]))
    unknown = sorted(set(spec) - {"low", "high", "log"})
    if unknown:
        raise refuse(f"unknown key {unknown[0]!r} (a range has low, high, log)")
    for end in ("low", "high"):
        if end not in spec:
            raise refuse(f"{end} is missing")
        if not isinstance(spec[end], (int, float)) or isinstance(spec[end], bool):
            raise refuse(f"{end} must be a number, got {spec[end]!r}")
    if spec["low"] >= spec["high"]:
        raise refuse(f"low {spec['low']!r} must be below high {spec['high']!r}")
    if not isinstance(spec.get("log", False), bool):
        raise refuse(f"log must be true or false, got {spec['log']!r}")
    if spec.get("log") and spec["low"] <= 0:
        raise refuse(f"log: true needs low > 0, got low {spec['low']!r}")
    return Param(name, spec["low"], spec["high"], bool(spec.get("log", False)))


def apply(values: dict[str, Any], model: dict[str, Any], train: dict[str, Any], reg: Any) -> tuple[dict, dict]:
    """(model, train) with ``values`` set (``train.X`` keys in train), both resolved and checked."""
    from .config import build_config, config_to_dict
    from .trainconfig import TrainConfig

    params, train = dict(model["params"]), dict(train)
    for k, v in values.items():
        if k.startswith("train."):
            train[k[len("train.") :]] = v
        else:
            _set(params, k.split("."), v)
    resolved = reg.resolve("model", model["name"], params, where="params")
    if any(k.startswith("train.") for k in values):
        train = config_to_dict(build_config(TrainConfig, {k: v for k, v in train.items()}, where="train"))
    return {**model, "params": resolved}, train


def _set(params: dict[str, Any], path: list[str], value: Any) -> None:
    """``params`` with ``value`` at the dotted ``path`` (``encoder_params.hidden``): a nested mapping is copied, its
    other keys kept, so a range can search one key of a model's nested parameters."""
    head, *rest = path
    if not rest:
        params[head] = value
        return
    inner = params.get(head)
    params[head] = dict(inner) if isinstance(inner, dict) else {}
    _set(params[head], rest, value)


def trial_value(outcome: Any, metric: str) -> float | None:
    """The trial's validation value of ``metric`` (clean condition, or the trainer's label loss)."""
    for cond, split, m, v in outcome.rows:
        if split == "valid" and m == metric and cond in ("clean", "train"):
            return v
    return None


def record_of(run: Any) -> dict[str, Any]:
    return copy.deepcopy(run.config.get("search") or {})


def dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


__all__ = [
    "SearchSpec",
    "PrunerSpec",
    "Param",
    "SearchError",
    "parse_search",
    "apply",
    "trial_value",
    "OutputExistsError",
]
