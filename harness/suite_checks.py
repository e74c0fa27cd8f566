"""Checks of a parsed suite that need more than its schema: numbers in range, seeds, devices, dataset labels,
conditions against each dataset's modalities, and the files that dataset params name.

Nothing here loads data or imports torch: modalities come from a dataset plugin's cheap ``modality_names(cfg)``
(or its ``describe(cfg)``), devices from what the machine shows without CUDA, file formats from a few header
bytes. :func:`resolve_path` is the one place where a suite's ``path:`` values are expanded (``~``, ``$VAR``) and
made absolute against the suite's folder, for ``validate`` and ``run`` alike.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from .errors import MfmBenchError

#: SQLite stores integers as signed 64-bit
MAX_SEED = 2**63 - 1
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"
PATH_KEYS = ("path", "data_dir", "root")


class PathError(MfmBenchError, ValueError):
    """A ``path:`` value that cannot be resolved (an unset ``$VAR``)."""


def resolve_path(value: str, base: Path) -> Path:
    """``value`` with ``~`` and ``$VAR`` expanded, relative paths taken against ``base`` (the suite's folder)."""
    expanded = os.path.expandvars(os.path.expanduser(value))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise PathError(f"{value!r} uses ${unset[0]}, which is not set; set it or write the path out")
    p = Path(expanded)
    return p if p.is_absolute() else (base / p).resolve()


def find_nan(value: Any, where: list) -> list | None:
    """The path of the first NaN inside ``value`` (nested lists and mappings), or None."""
    if isinstance(value, float) and math.isnan(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for k, v in items:
        found = find_nan(v, where + [k])
        if found is not None:
            return found
    return None


def check_seeds(seeds: list[int], at: Any, field: str = "seeds") -> None:
    for i, s in enumerate(seeds):
        if not isinstance(s, int):
            raise at.error(f"{field}[{i}]", f"seeds are integers, got {s!r}", "write it without a dot or exponent")
        if not 0 <= s <= MAX_SEED:
            raise at.error(f"{field}[{i}]", f"seed {s} is out of range", "seeds are integers from 0 to 2**63-1")
        if s in seeds[:i]:
            raise at.error(
                f"{field}[{i}]", f"seed {s} is listed twice (it would train the same run again)", "list each seed once"
            )


def cuda_count() -> int:
    """GPUs this process may use, without initialising CUDA (torch's count when torch is already imported)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.cuda.device_count())
    try:
        n = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        n = min(n, len([v for v in visible.split(",") if v.strip() and not v.strip().startswith("-")]))
    return n


def device_problem(name: str) -> str | None:
    """Why ``name`` cannot be used on this machine, or None."""
    if not re.fullmatch(DEVICE_PATTERN, name):
        return f"unknown device {name!r}; use auto, cpu, cuda or cuda:N"
    if name.startswith("cuda"):
        n, index = cuda_count(), int(name.partition(":")[2] or 0)
        if n == 0:
            return f"device {name!r}: this machine has no CUDA device; use cpu or auto"
        if index >= n:
            return f"device {name!r}: this machine has {n} CUDA device(s), cuda:0 to cuda:{n - 1}"
    return None


def check_train(train: dict[str, Any], at: Any, device: str | None = None) -> None:
    """Finite numbers, non-negative threads, a device that exists: the suite's own, or with ``device`` (the
    command line's ``--device``, which replaces it and is checked by the run) a device name that is well formed."""
    for key, value in train.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise at.error(f"train.{key}", f"must be a finite number, got {value}", "write a number such as 1e-3")
    if train.get("threads", 0) < 0:
        raise at.error("train.threads", f"must be 0 (auto) or more, got {train['threads']}")
    name = str(train.get("device", "auto"))
    if not re.fullmatch(DEVICE_PATTERN, name):
        raise at.error("train.device", device_problem(name))
    problem = device_problem(name) if device is None else None
    if problem:
        raise at.error("train.device", problem, "or keep the file and run it with --device cpu")


def check_dataset_labels(datasets: list[Any], at: Any) -> None:
    seen: dict[str, int] = {}
    for i, d in enumerate(datasets):
        if d.label in seen:
            raise at.error(
                f"datasets[{i}]",
                f"dataset label {d.label!r} is used twice (also datasets[{seen[d.label]}])",
                "give each a distinct label: {name: ..., label: ..., params: ...}, or drop the repeat",
            )
        seen[d.label] = i


def modality_names(reg: Any, ref: Any) -> list[str] | None:
    """The modalities dataset ``ref`` will have, without reading its data; None when the plugin cannot tell."""
    factory = reg.get("dataset", ref.name).factory
    cfg = reg.config_of("dataset", ref.name, ref.params)
    if hasattr(factory, "modality_names"):
        names = factory.modality_names(cfg)  # None: the plugin cannot tell yet (a file `fetch: true` will bring)
        return None if names is None else list(names)
    if hasattr(factory, "describe") and not hasattr(factory, "declare"):  # generated data: describing is cheap
        return list(described(reg, ref, factory, cfg).modality_names)
    return None


def described(reg: Any, ref: Any, factory: Any, cfg: Any) -> Any:
    """``factory.describe(cfg)``, refused with the plugin named when it is not a ``DatasetSpec`` (a plugin's
    mistake, which would otherwise surface as an AttributeError traceback in validate)."""
    from .contracts import DatasetSpec
    from .registry import PluginError

    spec = factory.describe(cfg)
    if not isinstance(spec, DatasetSpec):
        entry = reg.get("dataset", ref.name)
        raise PluginError(
            f"dataset {ref.name!r} from {entry.package} (plugin {entry.plugin}): its factory's describe(cfg) returned "
            f"{type(spec).__name__}, not a mfm_bench.contracts.DatasetSpec; return the DatasetSpec the built dataset "
            "will have (modalities with dims, task, splits), without reading data (docs/plugins.md)"
        )
    return spec


def check_conditions(items: list[tuple[int, Any]], datasets: list[Any], reg: Any, at: Any) -> None:
    """Every condition's modalities present in every dataset that can describe itself (``items`` are
    (index of the suite entry, condition); severities were range-checked when parsed)."""
    from .config import did_you_mean

    for d in datasets:
        names = modality_names(reg, d)
        if names is None:
            continue
        for i, c in items:
            unknown = [m for m in c.modalities if m not in names]
            if unknown:
                raise at.error(
                    f"evaluate.conditions[{i}]",
                    f"condition {c.name!r}: dataset {d.label!r} has no modality {unknown[0]!r}",
                    did_you_mean(unknown[0], names),
                )


def describe(reg: Any, ref: Any) -> Any:
    """Dataset ``ref``'s spec when the plugin can give it without reading data (generated data); else None."""
    factory = reg.get("dataset", ref.name).factory
    if hasattr(factory, "describe") and not hasattr(factory, "declare"):
        try:
            return described(reg, ref, factory, reg.config_of("dataset", ref.name, ref.params))
        except (ValueError, TypeError):  # params the plugin refuses: check_conditions reported them already
            return None
    return None


def check_encoders(raw_models: list[Any], datasets: list[Any], models: list[Any], reg: Any, at: Any) -> None:
    """Every encoder a model names able to read the kind of each modality of every dataset that can describe
    itself (an image given to an LSTM is refused here, not inside ``forward``), and every per-modality mapping the
    suite gives a model keyed by modalities its datasets have (:func:`_check_modality_keys`)."""
    from .encoder_kinds import EncoderKindError, check_model, fusion_problem

    specs = [s for s in (describe(reg, d) for d in datasets) if s is not None]
    names = [modality_names(reg, d) for d in datasets]
    for i, ref in enumerate(models):
        cfg = reg.config_of("model", ref.name, ref.params)
        if isinstance(cfg, dict):  # a model without a config dataclass names no encoder field
            continue
        item = raw_models[i] if i < len(raw_models) else None
        raw_params = item.get("params") if isinstance(item, dict) else None
        _check_modality_count(reg, type(cfg), ref, i, names, datasets, at)
        if isinstance(raw_params, dict) and all(n is not None for n in names):
            _check_modality_keys(reg, type(cfg), raw_params, ref, ["models", i, "params"], names, datasets, at)
        _check_encoder_mappings(cfg, ref, i, specs, len(specs) == len(datasets), at)
        for spec in specs:
            why = fusion_problem(reg, spec, f"model {ref.label!r}", cfg)
            if why:  # before the encoders: a raw-sequence fusion reads no encoder, so their advice would not help
                named = isinstance(raw_params, dict) and "fusion" in raw_params
                raise at.error(["models", i] + (["params", "fusion"] if named else []), why)
            try:
                check_model(reg, spec, f"model {ref.label!r}", cfg)
            except EncoderKindError as e:
                named = isinstance(raw_params, dict) and "encoder" in raw_params
                raise at.error(["models", i] + (["params", "encoder"] if named else []), str(e)) from None


def _check_encoder_mappings(cfg: Any, ref: Any, i: int, specs: list[Any], all_described: bool, at: Any) -> None:
    """An encoder given per modality (``{text: lstm, default: mean}``) names modalities the datasets have, and
    covers every modality of each dataset (or has ``default``): a misspelt key silently left that modality on
    ``default``, and a missing one failed every run when its model was built."""
    from .config import did_you_mean, nested_plugins

    names = list(dict.fromkeys(m.name for spec in specs for m in spec.modalities))
    for field, kind, _ in nested_plugins(type(cfg)):
        value = getattr(cfg, field, None)
        if kind != "encoder" or not isinstance(value, dict):
            continue
        where = ["models", i, "params", field]
        unknown = [k for k in value if k != "default" and k not in names]
        if unknown and all_described:
            raise at.error(
                where + [unknown[0]],
                f"model {ref.label!r}: {field} names modality {unknown[0]!r}, which no dataset of the suite has",
                did_you_mean(unknown[0], names + ["default"]),
            )
        for spec in specs:
            missing = [m.name for m in spec.modalities if m.name not in value]
            if missing and "default" not in value:
                raise at.error(
                    where,
                    f"model {ref.label!r}: {field} gives no encoder for modality {missing[0]!r} of dataset "
                    f"{spec.name!r} and has no 'default'",
                    f"add {missing[0]}: NAME, or default: NAME for every modality not named",
                )


def _check_modality_keys(
    reg: Any, config: type, params: dict, ref: Any, where: list, names: list, datasets: list, at: Any
) -> None:
    """Every mapping the suite gives a per-modality field (``option(..., modality_keys=...)``: MFM's ``za``,
    ``lambda_x``, ``decoder``...) is keyed by modality names some dataset of the suite has, or by the field's own
    keys (``default``...), in the model's params and in the params of the plugins it nests (``fusion_params``):
    a misspelt modality silently took the ``default`` value. Only what the suite wrote is checked (a preset's
    mapping names the modalities of the datasets it was made for)."""
    import dataclasses

    from .config import did_you_mean, modality_fields, nested_plugins

    known = list(dict.fromkeys(m for n in names for m in n))
    every = {f.name for f in dataclasses.fields(config) if f.metadata.get("every_modality")}
    for field, extra in modality_fields(config):
        value = params.get(field)
        if not isinstance(value, dict):
            continue
        unknown = [k for k in value if k not in known and k not in extra]
        if unknown:
            has = "; ".join(f"dataset {d.label!r} has {', '.join(n)}" for d, n in zip(datasets, names))
            raise at.error(
                where + [field, unknown[0]],
                f"model {ref.label!r}: {field} names modality {unknown[0]!r}, which no dataset of the suite has "
                f"({has})",
                did_you_mean(str(unknown[0]), known + list(extra)),
            )
        for d, n in zip(datasets, names) if field in every and "default" not in value else []:
            missing = [m for m in n if m not in value]
            if missing:
                raise at.error(
                    where + [field],
                    f"model {ref.label!r}: {field} gives no value for modality {missing[0]!r} of dataset "
                    f"{d.label!r} and has no 'default'",
                    f"add {missing[0]}: VALUE, or default: VALUE for every modality not named",
                )
    for fname, kind, pname in nested_plugins(config):
        plugin_names = params.get(fname, getattr(config, fname, None))
        nested = params.get(pname)
        if not isinstance(nested, dict) or not isinstance(plugin_names, (str, dict)):
            continue
        for name in [plugin_names] if isinstance(plugin_names, str) else dict.fromkeys(plugin_names.values()):
            try:
                entry = reg.get(kind, name)
            except LookupError:
                continue  # reported where the name is resolved
            if entry.config is None:
                continue
            own = reg.own_params(entry, nested)  # {hidden: 16}, or its part of {gru: {...}, lstm: {...}}
            sub = where + [pname] + ([name] if own != nested else [])
            _check_modality_keys(reg, entry.config, own, ref, sub, names, datasets, at)


def _check_modality_count(reg: Any, config: type, ref: Any, i: int, names: list, datasets: list, at: Any) -> None:
    """A model whose config says ``min_modalities`` (a contrastive or cross-modal model needs two) on a dataset
    with fewer: refused naming the dataset param that chose them (found by setting each param the suite gave back
    to its default), where the model's build would fail every run."""
    need = getattr(config, "min_modalities", 1)
    for j, (d, have) in enumerate(zip(datasets, names)):
        if have is None or len(have) >= need:
            continue
        key = _modality_param(reg, d, len(have))
        chosen = f", as its params.{key} chooses" if key else ""
        raise at.error(
            ["models", i],
            f"model {ref.label!r} needs at least {need} modalities, and dataset {d.label!r} has {len(have)} "
            f"({', '.join(have)}){chosen}",
            (
                f"give datasets[{j}].params.{key} {need} or more modalities"
                if key
                else f"use a dataset with {need} or more modalities"
            )
            + ", or use another model on this dataset (mfm-bench plugins --kind dataset --params lists each "
            "dataset's params)",
        )


def _modality_param(reg: Any, ref: Any, count: int) -> str | None:
    """The param the suite gave dataset ``ref`` that leaves it ``count`` modalities where its default gives
    more, or None (the dataset has no more)."""
    from types import SimpleNamespace

    try:
        defaults = reg.resolve("dataset", ref.name, {})
    except (ValueError, TypeError):  # a required param: no default to compare with
        return None
    for key, value in ref.params.items():
        if key not in defaults or value == defaults[key]:
            continue
        try:
            names = modality_names(reg, SimpleNamespace(name=ref.name, params={**ref.params, key: defaults[key]}))
        except (ValueError, TypeError):
            continue
        if names is not None and len(names) > count:
            return key
    return None
