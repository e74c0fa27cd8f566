"""Suite files: YAML -> a typed, validated :class:`Suite`. Every error names the file, the line, the field and the fix.

Validation happens in three layers, all before any training:
1. structure and types, by a JSON Schema (``jsonschema`` does the type checking and gives the path of each error);
2. plugin names and params, against each plugin's config dataclass (unknown keys, wrong types, "did you mean");
3. meaning, in :mod:`mfm_bench.suite_checks`: numbers finite and in range, seeds, devices, labels, conditions
   against each dataset's modalities;
4. files named by dataset params (``path``, ``data_dir``...), resolved by :func:`~mfm_bench.suite_checks.resolve_path`
   against the suite's folder (the params then hold the absolute path ``run`` uses), must exist unless the suite
   says ``fetch: true``; the data files found there must be in their declared format.

The YAML is read by :mod:`mfm_bench.yamlload` (YAML 1.2 floats, duplicate keys refused, bounded aliases).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import suite_checks as checks
from .conditions import Condition
from .config import ConfigError, build_config, config_to_dict, did_you_mean
from .errors import MfmBenchError
from .render import DEFAULT_FORMATS, FORMATS
from .suite_checks import PATH_KEYS
from .yamlload import YamlError, load_yaml, read_text

_REF = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "label": {"type": "string"}, "params": {"type": "object"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    ]
}

_MODEL_REF = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "label": {"type": "string"},
                "params": {"type": "object"},
                "search": {"type": "object"},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ]
}

_EXECUTOR = {
    "type": "object",
    "properties": {
        "kind": {"enum": ["local", "ray"]},
        "jobs": {"type": "integer", "minimum": 1},
        "address": {"type": "string"},
        "retries": {"type": "integer", "minimum": 0},
        "cpus": {"type": "number", "exclusiveMinimum": 0},
        "gpus": {"type": "number", "minimum": 0},
    },
    "additionalProperties": False,
}

#: the fewest bootstrap resamples that give an interval (mfm_bench.stats.bootstrap_ci keeps a CI of 10 or more)
MIN_BOOTSTRAP = 10

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
        "description": {"type": "string"},
        "datasets": {"type": "array", "items": _REF, "minItems": 1},
        "models": {"type": "array", "items": _MODEL_REF, "minItems": 1},
        "seeds": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
        "train": {"type": "object"},
        "evaluate": {
            "type": "object",
            "properties": {
                "conditions": {"type": "array"},
                "probes": {"type": "boolean"},
                "bootstrap": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": False,
        },
        "report": {
            "type": "object",
            "properties": {
                "formats": {"type": "array", "items": {"enum": list(FORMATS)}, "minItems": 1},
                "reference": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "fetch": {"type": "boolean"},
        "executor": _EXECUTOR,
        "trackers": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "datasets", "models"],
    "additionalProperties": False,
}


class SuiteError(MfmBenchError, ValueError):
    """A suite that does not validate. ``str()`` reads ``FILE:LINE: FIELD: problem (fix)``."""

    def __init__(self, file: str | Path, line: int | None, field: str, message: str, hint: str = "") -> None:
        self.file, self.line, self.field, self.message, self.hint = str(file), line, field, message, hint
        where = f"{self.file}:{line}" if line else self.file
        text = f"{where}: {field}: {message}" + (f" ({hint})" if hint else "") if field else f"{where}: {message}"
        super().__init__(text)


@dataclass
class PluginRef:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    search: Any = None  # mfm_bench.search.SearchSpec: a model's hyperparameter search


@dataclass
class Suite:
    name: str
    path: Path
    datasets: list[PluginRef]
    models: list[PluginRef]
    seeds: list[int]
    train: dict[str, Any]
    conditions: list[Any]  # evaluation.Condition
    probes: bool = True
    formats: list[str] = field(default_factory=lambda: list(DEFAULT_FORMATS))
    bootstrap: int = 1000  # resamples of the test-sample bootstrap CI (0: none); see mfm_bench.stats
    reference: str | None = None  # model label the leaderboard compares every model with, paired over seeds
    fetch: bool = False
    description: str = ""
    trackers: list[str] = field(default_factory=list)
    executor: Any = None  # mfm_bench.executors.Execution: where runs train (default: here, one at a time)

    def __post_init__(self) -> None:
        if self.executor is None:
            from .executors import Execution

            self.executor = Execution()

    @property
    def searches(self) -> dict[str, Any]:
        """Model label -> its search spec, for the models that have one."""
        return {m.label: m.search for m in self.models if m.search is not None}


def _parse_path(field_path: str) -> list[str | int]:
    """``models[0].params.hidden`` -> ["models", 0, "params", "hidden"]."""
    out: list[str | int] = []
    for part in field_path.replace("]", "").split("."):
        pieces = part.split("[")
        if pieces[0]:
            out.append(pieces[0])
        out.extend(int(p) for p in pieces[1:])
    return out


def _line_of(node: yaml.Node | None, path: list[str | int]) -> int | None:
    """1-based line of the YAML node at ``path`` (the key's line for mapping entries), or of its nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == step:
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _fmt_path(path: Any) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


class _Locator:
    """Turns a field path into a :class:`SuiteError` carrying the file and the line of that field."""

    def __init__(self, path: Path, node: yaml.Node | None) -> None:
        self.path, self.node = path, node

    def error(self, field_path: str | list, message: str, hint: str = "") -> SuiteError:
        parts = _parse_path(field_path) if isinstance(field_path, str) else list(field_path)
        return SuiteError(self.path, _line_of(self.node, parts), _fmt_path(parts), message, hint)


def _refuses(modality_names: Any, reg: Any, ref: Any) -> bool:
    """Whether dataset ``ref``'s plugin refuses its params when asked for its modalities."""
    try:
        modality_names(reg, ref)
    except (ValueError, TypeError):
        return True
    return False


def load_suite(
    path: str | Path,
    registry: Any = None,
    check_files: bool = True,
    device: str | None = None,
    require_describe: bool = False,
) -> Suite:
    """Read, validate and resolve a suite file. Raises :class:`SuiteError` on the first problem. ``device``: a
    device that will replace the suite's ``train.device`` (``mfm-bench run --device``, checked by its caller), so
    the suite's own device is not required to exist on this machine. ``require_describe`` (``mfm-bench
    validate``): refuse a dataset plugin without the ``describe(cfg)`` of its contract, which ``run`` does not
    need."""
    from .registry import get_registry

    path = Path(path)
    node, raw = _read(path)
    at = _Locator(path, node)
    _check_schema(raw, at)
    nan = checks.find_nan(raw, [])
    if nan is not None:
        raise at.error(nan, "is .nan (not a number)", "write a finite number or a string")
    checks.check_seeds(list(raw.get("seeds", [0])), at)
    reg = registry or get_registry()
    datasets = _refs(raw, reg, "dataset", "datasets", at)
    models = _refs(raw, reg, "model", "models", at)
    _label(datasets, "datasets", "dataset", at)
    _label(models, "models", "model", at)
    checks.check_dataset_labels(datasets, at)
    _check_factories(raw, datasets, models, reg, at, require_describe)
    train = _train(raw, at)
    checks.check_train(train, at, device)
    evaluate = raw.get("evaluate") or {}
    if 0 < evaluate.get("bootstrap", 1000) < MIN_BOOTSTRAP:  # fewer draws than stats.bootstrap_ci keeps: no CI
        raise at.error(
            ["evaluate", "bootstrap"],
            f"{evaluate['bootstrap']} resamples give no interval (a CI needs at least {MIN_BOOTSTRAP})",
            "use 1000 (the default), or 0 for none",
        )
    items = _conditions(evaluate, at)
    conditions = [Condition("clean")] + [c for _, c in items if c.kind != "clean"]
    fetch = bool(raw.get("fetch", False))
    _resolve_files(datasets, path, reg, at, must_exist=check_files and not fetch)
    try:
        checks.check_conditions(items, datasets, reg, at)
    except SuiteError:
        raise
    except (ValueError, TypeError) as e:  # a plugin's describe() refusing its params: name the dataset that did
        i = next((i for i, d in enumerate(datasets) if _refuses(checks.modality_names, reg, d)), None)
        field, who = (
            (["datasets", i, "params"], f"dataset {datasets[i].label!r} ({datasets[i].name})")
            if i is not None
            else ("datasets", "a dataset")
        )
        raise at.error(
            field,
            f"{who} refused its params when asked for its modalities (to check evaluate.conditions against them): {e}",
            "fix that dataset's params; `mfm-bench plugins --params` lists each plugin's params",
        ) from None
    if check_files:
        _check_formats(datasets, reg, at)
    report = raw.get("report") or {}
    reference = report.get("reference")
    if reference is not None and reference not in [m.label for m in models]:
        raise at.error(
            ["report", "reference"],
            f"no model is labelled {reference!r}",
            did_you_mean(reference, [m.label for m in models]),
        )
    checks.check_encoders(raw["models"], datasets, models, reg, at)
    _searches(raw, models, reg, train, at, datasets)
    _check_search_factories(models, reg, at)
    return Suite(
        name=raw["name"],
        path=path,
        datasets=datasets,
        models=models,
        seeds=list(raw.get("seeds", [0])),
        train=train,
        conditions=conditions,
        probes=bool(evaluate.get("probes", True)),
        formats=list(report.get("formats", DEFAULT_FORMATS)),
        bootstrap=int(evaluate.get("bootstrap", 1000)),
        reference=reference,
        fetch=fetch,
        description=raw.get("description", ""),
        trackers=_trackers(raw, at),
        executor=_executor(raw),
    )


def _executor(raw: dict[str, Any]) -> Any:
    from .executors import Execution

    return Execution(**(raw.get("executor") or {}))


def _searches(
    raw: dict[str, Any], models: list[PluginRef], reg: Any, train: dict[str, Any], at: _Locator, datasets: list
) -> None:
    """Each model's ``search:`` block, checked against the model's typed config and the datasets' metrics
    (:mod:`mfm_bench.search`)."""
    for i, (item, ref) in enumerate(zip(raw["models"], models)):
        if isinstance(item, dict) and item.get("search") is not None:
            from .search import SearchError, parse_search

            try:
                ref.search = parse_search(item["search"], ref, reg, train, list(raw.get("seeds", [0])), datasets)
            except SearchError as e:
                raise at.error(f"models[{i}].search" + (f".{e.field}" if e.field else ""), e.message, e.hint) from None


def _read(path: Path) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The YAML node tree (for line numbers) and the parsed mapping."""
    if not path.exists():
        raise SuiteError(path, None, "", "no such suite file", "check the path; suites live in suites/")
    if path.is_dir():
        raise SuiteError(path, None, "", "is a folder, not a suite file", "give the path of a .yaml file")
    try:
        node, raw = load_yaml(read_text(path))
    except YamlError as e:
        raise SuiteError(path, e.line, "", e.message) from None
    except OSError as e:
        raise SuiteError(path, None, "", f"cannot be read: {e.strerror or e}", "check its permissions") from None
    if not isinstance(raw, dict):
        raise SuiteError(path, 1, "", "a suite is a YAML mapping with at least name, datasets and models")
    return node, raw


def _check_schema(raw: dict[str, Any], at: _Locator) -> None:
    """Layer 1: structure and types; the first error, outermost field first."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    for err in errors:
        where = list(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - allowed)
            raise at.error(where + [extra[0]], f"unknown key {extra[0]!r}", did_you_mean(extra[0], allowed))
        if err.validator == "required":
            raise at.error(where, err.message, "see docs/suites.md for the suite format")
        if err.validator == "oneOf":
            raise at.error(
                where, f"expected a plugin name or {{name: ..., params: {{...}}, label: ...}}, got {err.instance!r}"
            )
        raise at.error(where, err.message)


def _refs(raw: dict[str, Any], reg: Any, kind: str, key: str, at: _Locator) -> list[PluginRef]:
    """Layer 2: each entry of ``raw[key]`` names a registered plugin of ``kind``; its params are resolved."""
    from .registry import PluginError

    out = []
    for i, item in enumerate(raw[key]):
        if isinstance(item, str):
            ref = PluginRef(item)
        else:
            ref = PluginRef(item["name"], dict(item.get("params") or {}), item.get("label", ""))
        try:
            reg.get(kind, ref.name)
        except PluginError as e:
            raise at.error(f"{key}[{i}].name", str(e)) from None
        try:
            ref.params = reg.resolve(kind, ref.name, ref.params, where=f"{key}[{i}].params")
        except ConfigError as e:
            raise at.error(e.field, e.message, e.hint) from None
        out.append(ref)
    return out


def _check_factories(
    raw: dict[str, Any], datasets: list[PluginRef], models: list[PluginRef], reg: Any, at: _Locator, describe: bool
) -> None:
    """The factory of every plugin the suite uses (each dataset and model, and the plugins a model's params name:
    its encoders, its fusion) can be found: a wrong ``"module:attr"`` is reported here, before any training, and
    without importing the module (:meth:`mfm_bench.registry.Entry.check_factory`). With ``describe``, each
    dataset's factory also has the ``describe(cfg)`` of its contract (:class:`mfm_bench.contracts.DatasetFactory`)."""
    from .config import nested_plugins
    from .registry import PluginError

    for key, kind, refs in (("datasets", "dataset", datasets), ("models", "model", models)):
        for i, ref in enumerate(refs):
            item = raw[key][i]
            entry = reg.get(kind, ref.name)
            try:
                entry.check_factory()
            except PluginError as e:
                raise at.error([key, i] + (["name"] if isinstance(item, dict) else []), str(e)) from None
            if describe and kind == "dataset" and not callable(getattr(entry.factory, "describe", None)):
                raise at.error(
                    [key, i] + (["name"] if isinstance(item, dict) else []),
                    f"dataset {ref.name!r} from {entry.package} (plugin {entry.plugin}): its factory "
                    f"{getattr(entry.factory, '__qualname__', entry.factory)!r} has no describe(cfg), which the "
                    "dataset contract asks for (validate checks conditions and encoders against it)",
                    "add a classmethod describe(cls, cfg) -> DatasetSpec giving the modalities, task and splits "
                    "without reading data (mfm_bench.contracts.DatasetFactory; docs/plugins.md)",
                )
            if entry.config is None:
                continue
            for fname, nested_kind, _ in nested_plugins(entry.config):
                value = ref.params.get(fname)
                for name in dict.fromkeys(value.values()) if isinstance(value, dict) else [value]:
                    if not isinstance(name, str) or name not in reg.entries[nested_kind]:
                        continue  # an unknown name was reported when the params were resolved
                    try:
                        reg.get(nested_kind, name).check_factory()
                    except PluginError as e:
                        params = item.get("params") if isinstance(item, dict) else None
                        named = isinstance(params, dict) and fname in params
                        raise at.error(
                            [key, i] + (["params", fname] if named else []),
                            f"{kind} {ref.label or ref.name!r} uses {nested_kind} {name!r}"
                            f"{'' if named else f' (its default {fname})'}: {e}",
                        ) from None


def _check_search_factories(models: list[PluginRef], reg: Any, at: _Locator) -> None:
    """The factory of every plugin a search may choose (``fusion: {choices: [concat, my-fusion]}``) can be found,
    as :func:`_check_factories` checks the suite's own choices: a wrong one would fail only the trials that draw it."""
    from .config import nested_plugins
    from .registry import PluginError

    for i, ref in enumerate(models):
        config = reg.get("model", ref.name).config
        if ref.search is None or config is None:
            continue
        fields = {fname: kind for fname, kind, _ in nested_plugins(config)}
        for param in ref.search.params:
            kind = fields.get(param.name)
            for choice in (param.choices or []) if kind else []:
                for name in dict.fromkeys(choice.values()) if isinstance(choice, dict) else [choice]:
                    if isinstance(name, str) and name in reg.entries[kind]:
                        try:
                            reg.get(kind, name).check_factory()
                        except PluginError as e:
                            raise at.error(
                                ["models", i, "search", "params", param.name],
                                f"model {ref.label!r} may choose {kind} {name!r}: {e}",
                            ) from None


def _label(refs: list[PluginRef], key: str, kind: str, at: _Locator) -> None:
    """Stable, unique labels: they are leaderboard keys (models name rows, datasets name sections). An
    unlabelled entry is labelled by its name, so a name that appears twice needs a label on each entry."""
    names = [m.name for m in refs]
    for i, m in enumerate(refs):
        if not m.label:
            if names.count(m.name) > 1:
                raise at.error(
                    f"{key}[{i}]",
                    f"{kind} {m.name!r} appears {names.count(m.name)} times",
                    "give each a distinct label: {name: ..., label: ..., params: ...}",
                )
            m.label = m.name
    labels = [m.label for m in refs]
    for i, m in enumerate(refs):
        if m.label in labels[:i]:  # the repeat is the one to point at, with the entry it repeats
            raise at.error(
                f"{key}[{i}].label",
                f"label {m.label!r} is used twice (also {key}[{labels.index(m.label)}])",
                f"labels name leaderboard {'rows' if kind == 'model' else 'sections'}; make them distinct",
            )


def _train(raw: dict[str, Any], at: _Locator) -> dict[str, Any]:
    from .trainconfig import TrainConfig

    try:
        return config_to_dict(build_config(TrainConfig, raw.get("train"), where="train"))
    except ConfigError as e:
        raise at.error(e.field, e.message, e.hint) from None


def _trackers(raw: dict[str, Any], at: _Locator) -> list[str]:
    from .tracking import BUILTIN_TRACKERS

    names = list(raw.get("trackers") or [])
    for i, name in enumerate(names):
        if name not in BUILTIN_TRACKERS:
            raise at.error(
                f"trackers[{i}]",
                f"unknown tracker {name!r}",
                did_you_mean(name, BUILTIN_TRACKERS)
                + "; a third-party tracker implements the on_run_* hooks and needs no entry here",
            )
    return names


def _conditions(evaluate: dict[str, Any], at: _Locator) -> list[tuple[int, Any]]:
    """The parsed conditions as (index of the suite entry, condition); their modalities are checked against the
    datasets once the datasets' paths are resolved (``suite_checks.check_conditions``)."""
    from .conditions import ConditionError, parse_condition_items

    try:
        return parse_condition_items(evaluate.get("conditions", ["clean"]))
    except ConditionError as e:
        raise at.error(f"evaluate.conditions[{e.index}]", e.message) from None
    except ValueError as e:  # e.g. a noise std that is no number
        raise at.error("evaluate.conditions", str(e)) from None


def _resolve_files(datasets: list[PluginRef], suite_path: Path, reg: Any, at: _Locator, must_exist: bool) -> None:
    """Layer 4: files named by dataset params, resolved against the suite's folder; the params keep the result."""
    for i, d in enumerate(datasets):
        for key in PATH_KEYS:
            value = d.params.get(key)
            if not (isinstance(value, str) and value):
                continue
            try:
                p = checks.resolve_path(value, suite_path.parent.resolve())
            except checks.PathError as e:
                raise at.error(f"datasets[{i}].params.{key}", str(e)) from None
            if must_exist and not p.exists():
                raise at.error(
                    f"datasets[{i}].params.{key}",
                    f"{value!r} does not exist ({p})",
                    "point it at the data, or set `fetch: true` to download it (mfm-bench fetch)",
                )
            if p.is_file() and _wants_folder(reg, d, key, p):
                raise at.error(
                    f"datasets[{i}].params.{key}",
                    f"{value!r} is a file; it must be the folder that holds the dataset's files",
                    "see `mfm-bench datasets` for the folders and files",
                )
            d.params[key] = str(p)


def _wants_folder(reg: Any, d: PluginRef, key: str, p: Path) -> bool:
    """Whether the dataset reads ``p`` as a folder (a file there is a mistake): true unless its declaration names
    ``p`` itself as one of its files (a plugin that takes one file, like the ``tensors`` format)."""
    declare = getattr(reg.get("dataset", d.name).factory, "declare", None)
    if declare is None:
        return False
    try:
        decl = declare(reg.config_of("dataset", d.name, {**d.params, key: str(p)}))
    except Exception:  # noqa: BLE001 - params that do not build a declaration are reported by the later checks
        return True
    return not any(
        (Path(f.folder).expanduser() / df.name).resolve() == p.resolve() for f in decl.formats for df in f.files
    )


def _check_formats(datasets: list[PluginRef], reg: Any, at: _Locator) -> None:
    """The declared data files that are present must be in their format (HDF5, pickle, computational sequence)."""
    from .data.fetch import folder_of
    from .data.sniff import format_problem

    for i, d in enumerate(datasets):
        declare = getattr(reg.get("dataset", d.name).factory, "declare", None)
        if declare is None:  # a plugin that takes a file: that file
            files = [(f"datasets[{i}].params.{k}", Path(d.params[k])) for k in PATH_KEYS if d.params.get(k)]
        else:
            decl = declare(reg.config_of("dataset", d.name, d.params))
            files = [(f"datasets[{i}]", folder_of(fmt) / f.name) for fmt in decl.formats for f in fmt.files]
        for where, p in files:
            problem = format_problem(p) if p.is_file() else None
            if problem:
                raise at.error(
                    where, f"{p} {problem}", f"replace it (mfm-bench fetch {d.name}) or point params.path elsewhere"
                )
