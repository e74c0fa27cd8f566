"""Suite files: YAML -> a typed, validated :class:`Suite`. Every error names the file, the line, the field and the fix.

Validation happens in three layers, all before any training:
1. structure and types, by a JSON Schema (``jsonschema`` does the type checking and gives the path of each error);
2. plugin names and params, against each plugin's config dataclass (unknown keys, wrong types, "did you mean");
3. files named by dataset params (``path``, ``data_dir``...) must exist unless the suite says ``fetch: true``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .config import ConfigError, build_config, config_to_dict, did_you_mean
from .errors import MfmBenchError
from .render import DEFAULT_FORMATS, FORMATS

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
            "properties": {"name": {"type": "string"}, "label": {"type": "string"}, "params": {"type": "object"},
                           "search": {"type": "object"}},
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
            "properties": {"conditions": {"type": "array"}, "probes": {"type": "boolean"}},
            "additionalProperties": False,
        },
        "report": {
            "type": "object",
            "properties": {
                "formats": {"type": "array", "items": {"enum": list(FORMATS)}},
            },
            "additionalProperties": False,
        },
        "fetch": {"type": "boolean"},
        "executor": _EXECUTOR,
    },
    "required": ["name", "datasets", "models"],
    "additionalProperties": False,
}

PATH_KEYS = ("path", "data_dir", "root")


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
    fetch: bool = False
    description: str = ""
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


def load_suite(path: str | Path, registry: Any = None, check_files: bool = True) -> Suite:
    """Read, validate and resolve a suite file. Raises :class:`SuiteError` on the first problem."""
    from .registry import get_registry

    path = Path(path)
    node, raw = _read(path)
    at = _Locator(path, node)
    _check_schema(raw, at)
    reg = registry or get_registry()
    datasets = _refs(raw, reg, "dataset", "datasets", at)
    models = _refs(raw, reg, "model", "models", at)
    _label_models(models, at)
    for d in datasets:
        d.label = d.label or d.name
    train = _train(raw, at)
    evaluate = raw.get("evaluate") or {}
    conditions = _conditions(evaluate, at)
    fetch = bool(raw.get("fetch", False))
    if check_files and not fetch:
        _check_files(datasets, path, at)
    report = raw.get("report") or {}
    _searches(raw, models, reg, train, at)
    return Suite(
        name=raw["name"], path=path, datasets=datasets, models=models, seeds=list(raw.get("seeds", [0])),
        train=train, conditions=conditions, probes=bool(evaluate.get("probes", True)),
        formats=list(report.get("formats", DEFAULT_FORMATS)),
        fetch=fetch, description=raw.get("description", ""), executor=_executor(raw),
    )


def _executor(raw: dict[str, Any]) -> Any:
    from .executors import Execution

    return Execution(**(raw.get("executor") or {}))


def _searches(raw: dict[str, Any], models: list[PluginRef], reg: Any, train: dict[str, Any], at: _Locator) -> None:
    """Each model's ``search:`` block, checked against the model's typed config (:mod:`mfm_bench.search`)."""
    for i, (item, ref) in enumerate(zip(raw["models"], models)):
        if isinstance(item, dict) and item.get("search") is not None:
            from .search import SearchError, parse_search

            try:
                ref.search = parse_search(item["search"], ref, reg, train)
            except SearchError as e:
                raise at.error(f"models[{i}].search" + (f".{e.field}" if e.field else ""), e.message, e.hint) from None


def _read(path: Path) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The YAML node tree (for line numbers) and the parsed mapping."""
    if not path.is_file():
        raise SuiteError(path, None, "", "no such suite file", "check the path; suites live in suites/")
    text = path.read_text()
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise SuiteError(path, line, "", f"not valid YAML: {getattr(e, 'problem', e)}") from None
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
            raise at.error(where, "expected a plugin name or {name: ..., params: {...}, label: ...}, "
                                  f"got {err.instance!r}")
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


def _label_models(models: list[PluginRef], at: _Locator) -> None:
    """Stable, unique labels: they are leaderboard keys. An unlabelled model is labelled by its name."""
    names = [m.name for m in models]
    for i, m in enumerate(models):
        if not m.label:
            if names.count(m.name) > 1:
                raise at.error(f"models[{i}]", f"model {m.name!r} appears {names.count(m.name)} times",
                               "give each a distinct label: {name: ..., label: ..., params: ...}")
            m.label = m.name
    labels = [m.label for m in models]
    for i, m in enumerate(models):
        if labels.count(m.label) > 1:
            raise at.error(f"models[{i}].label", f"label {m.label!r} is used twice",
                           "labels name leaderboard rows; make them distinct")


def _train(raw: dict[str, Any], at: _Locator) -> dict[str, Any]:
    from .training import TrainConfig

    try:
        return config_to_dict(build_config(TrainConfig, raw.get("train"), where="train"))
    except ConfigError as e:
        raise at.error(e.field, e.message, e.hint) from None


def _conditions(evaluate: dict[str, Any], at: _Locator) -> list[Any]:
    from .evaluation import ConditionError, parse_conditions

    try:
        return parse_conditions(evaluate.get("conditions", ["clean"]))
    except ConditionError as e:
        raise at.error(f"evaluate.conditions[{e.index}]", e.message) from None
    except ValueError as e:  # e.g. a noise std that is no number
        raise at.error("evaluate.conditions", str(e)) from None


def _check_files(datasets: list[PluginRef], suite_path: Path, at: _Locator) -> None:
    """Layer 3: files named by dataset params exist, as given or relative to the suite's folder."""
    for i, d in enumerate(datasets):
        for key in PATH_KEYS:
            value = d.params.get(key)
            if not (isinstance(value, str) and value):
                continue
            p = Path(os.path.expandvars(os.path.expanduser(value)))
            if not p.is_absolute() and not p.exists():
                p = suite_path.parent / p
            if not p.exists():
                raise at.error(f"datasets[{i}].params.{key}", f"{value!r} does not exist",
                               "point it at the data, or set `fetch: true` to download it (mfm-bench fetch)")
