"""Typed plugin configs: validate suite params against a config dataclass, fill defaults, suggest fixes.

A plugin's config dataclass is the one home of each of its defaults; field ``metadata={"help": ...}``
documents the parameter (shown by ``mfm-bench plugins --params``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import types
import typing
from typing import Any, Literal, Union

from .errors import MfmBenchError


class ConfigError(MfmBenchError, ValueError):
    """A parameter that does not fit. ``field`` is the dotted path of the offending key, ``hint`` the fix."""

    def __init__(self, message: str, field: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message, self.field, self.hint = message, field, hint

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        fix = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{fix}"

    def under(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` prepended to its field path."""
        return ConfigError(self.message, f"{prefix}.{self.field}" if self.field else prefix, self.hint)


def closest(word: str, choices: typing.Iterable[str]) -> str | None:
    """The choice nearest ``word`` when one is near enough to be a likely misspelling, else None."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    choices = sorted(choices)
    close = closest(word, choices)
    avail = ", ".join(choices)
    return (f"did you mean {close!r}? " if close else "") + f"available: {avail}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _expected(tp: Any) -> str:
    """``tp`` as an error message says what it expected."""
    if tp is bool:
        return "true or false"
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return _type_name(tp)


def check_type(value: Any, tp: Any, field: str) -> Any:
    """Return ``value`` converted to ``tp`` where lossless (int -> float, list -> tuple), else raise ConfigError."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_type(value, a, field)
            except ConfigError:
                pass
        choices = [str(c) for a in args if typing.get_origin(a) is Literal for c in typing.get_args(a)]
        close = closest(value, choices) if isinstance(value, str) else None
        hint = f"did you mean {close!r}?" if close else (_quoted_bool(value) if bool in args else "")
        raise ConfigError(f"expected {', or '.join(_expected(a) for a in args)}, got {value!r}", field, hint)
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(
            f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}",
            field,
            did_you_mean(str(value), [str(a) for a in args]),
        )
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {value!r}", field)
        item = args[0] if args else Any
        out = [check_type(v, item, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {value!r}", field)
        vt = args[1] if len(args) == 2 else Any
        return {k: check_type(v, vt, f"{field}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"expected true or false, got {value!r}", field, _quoted_bool(value))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"expected an integer, got {value!r}", field)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"expected a number, got {value!r}", field)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"expected a string, got {value!r}", field)
    return value


#: what YAML reads as a boolean when it is not quoted
YAML_BOOLS = {"true", "false", "yes", "no", "on", "off"}


def _quoted_bool(value: Any) -> str:
    """The fix for a boolean written as a string ("true" in quotes), else ""."""
    if isinstance(value, str) and value.lower() in YAML_BOOLS:
        word = "true" if value.lower() in ("true", "yes", "on") else "false"
        return f"write {word} without quotes: a quoted {value!r} is a string"
    return ""


def build_config(cls: type, params: dict[str, Any] | None, where: str = "params") -> Any:
    """Instantiate config dataclass ``cls`` from ``params``, refusing unknown keys and wrong types."""
    params = dict(params or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in params.items():
        if key not in fields:
            hint = did_you_mean(key, fields)
            nested = sorted(f for f in fields if f.endswith("_params"))
            if nested and not closest(key, fields):  # perhaps an option of a nested plugin (the fusion's impl)
                hint += f"; an option of a nested plugin goes in its params: {' or '.join(nested)}: {{{key}: ...}}"
            raise ConfigError(f"unknown key {key!r}", f"{where}.{key}", hint)
        kwargs[key] = check_type(value, hints.get(key, Any), f"{where}.{key}")
        check_bounds(kwargs[key], fields[key], f"{where}.{key}")
    missing = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs
    ]
    if missing:
        raise ConfigError(f"missing required key(s) {', '.join(missing)}", where)
    try:
        return cls(**kwargs)
    except ConfigError as e:  # a __post_init__ check that names its field
        raise e.under(where) from None
    except (ValueError, TypeError) as e:  # __post_init__ checks
        raise ConfigError(str(e), where) from e
    except ArithmeticError as e:  # a __post_init__ that divides by a param given 0 (heads: 0)
        zero = sorted(k for k, v in kwargs.items() if v == 0 and not isinstance(v, bool))
        raise ConfigError(
            f"these params do not fit together ({type(e).__name__}: {e})",
            where,
            f"{', '.join(zero)} is 0: give it a positive value" if zero else f"see the params of {cls.__name__}",
        ) from e


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config instance (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def describe_config(cls: type) -> list[tuple[str, str, str, str]]:
    """Rows of (name, type, default, help) for documentation and ``--params``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        help = f.metadata.get("help", "")
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None or hi is not None:
            help = f"{help} [{_bounds_use(lo, hi)}]"
        rows.append((f.name, _type_name(hints.get(f.name, Any)), default, help))
    return rows


def option(default: Any, help: str, **metadata: Any) -> Any:
    """A dataclass field with a default and help text: ``hidden: int = option(64, "LSTM hidden size")``.

    ``min=`` and ``max=`` bound a number (``hidden: int = option(32, "width", min=1)``): :func:`build_config`
    refuses a suite's value outside them, naming the field (each value of a per-modality mapping is checked).
    ``modality_keys=("default", ...)`` marks a per-modality setting (a value, or a mapping keyed by modality
    name or one of these keys): ``mfm-bench validate`` refuses a key that is neither, with the dataset's
    modality names (:func:`modality_fields`); with ``every_modality=True`` also a mapping that has no
    ``default`` and leaves out a modality of a dataset (every modality reads the field)."""
    metadata = {"help": help, **metadata}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _bounds_text(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    return f"at least {lo}" if lo is not None else f"at most {hi}"


def _bounds_use(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    return f"{lo} or more" if lo is not None else f"{hi} or less"


def check_bounds(value: Any, field: dataclasses.Field, path: str) -> None:
    """Raise :class:`ConfigError` naming ``path`` when number ``value`` (or a number of mapping ``value``) is
    outside the ``min``/``max`` of ``field``'s metadata (see :func:`option`)."""
    lo, hi = field.metadata.get("min"), field.metadata.get("max")
    if lo is None and hi is None:
        return
    items = value.items() if isinstance(value, dict) else [(None, value)]
    for key, v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(
                f"must be {_bounds_text(lo, hi)}, got {v!r}",
                path if key is None else f"{path}.{key}",
                f"{field.name}: {field.metadata.get('help', '')}; use {_bounds_use(lo, hi)}",
            )


def modality_fields(cls: type) -> list[tuple[str, tuple[str, ...]]]:
    """(field, keys other than modality names it takes) of every per-modality field of config dataclass ``cls``
    (declared with ``option(..., modality_keys=(...))``)."""
    return [
        (f.name, tuple(f.metadata["modality_keys"])) for f in dataclasses.fields(cls) if "modality_keys" in f.metadata
    ]


def plugin(kind: str, default: Any, help: str, params: str | None = None) -> Any:
    """A field naming a nested plugin of ``kind``: ``encoder: str | dict = plugin("encoder", "lstm", help=...)``.

    Its value is a plugin name or a mapping ``{modality: name, "default": name}``. The sibling field ``params``
    (default: ``<field>_params``, a ``dict``) holds that plugin's params; the registry validates them against
    the nested plugin's config and fills its defaults, so they reach the run id.
    """
    return option(default, help, plugin=kind, params=params)


def nested_plugins(cls: type) -> list[tuple[str, str, str]]:
    """(name field, plugin kind, params field) of every :func:`plugin` field of config dataclass ``cls``."""
    return [
        (f.name, f.metadata["plugin"], f.metadata.get("params") or f"{f.name}_params")
        for f in dataclasses.fields(cls)
        if f.metadata.get("plugin")
    ]


def bounded_arg(cast: type, lo: float, hi: float | None, expects: str) -> Any:
    """An argparse ``type`` for a number ``cast(text)`` in [lo, hi] (no upper bound when ``hi`` is None); anything
    else is a usage error reading ``argument FLAG: takes EXPECTS, got TEXT``."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or value != value or value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"takes {expects}, got {text!r}")  # argparse names the flag
        return value

    return parse


def device_arg(text: str) -> str:
    """A ``--device`` value: a name ``TrainConfig.device`` accepts (auto, cpu, cuda, cuda:N), checked without torch."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N (e.g. cuda:1), got {text!r}")
    return text


def per_modality(value: Any, name: str, field: str) -> Any:
    """A per-modality setting: a plain value for every modality, or a mapping {modality: value, "default": value}."""
    if isinstance(value, dict):
        if name in value:
            return value[name]
        if "default" in value:
            return value["default"]
        raise ValueError(
            f"{field}: no value for modality {name!r} and no 'default' key in {value!r}; add {name!r} or 'default'"
        )
    return value
