"""The fail-fast data check: before the first run, every dataset of a suite must find its files.

Dataset plugins declare their files (``factory.declare(cfg)``); this reads the declarations only, never the
data. When some dataset has no complete format on disk, one :class:`SuiteDataMissingError` lists each such
dataset, every folder it looked in and the command that fetches it, instead of one failed run per grid cell.
Datasets with ``fetch: true`` in their params download at build time and are not checked; generated datasets
declare nothing and always pass.
"""

from __future__ import annotations

from typing import Any

from .errors import MfmBenchError


class SuiteDataMissingError(MfmBenchError, FileNotFoundError):
    """Some datasets of a suite have no data on disk; the message lists them, where they looked, how to fetch."""


def missing_datasets(suite: Any, registry: Any = None) -> list[str]:
    """One line per dataset of ``suite`` whose declared files are not all present in any of its formats."""
    from .data.fetch import complete_format, folder_of, missing_files
    from .data.paths import data_home
    from .registry import get_registry

    reg = registry or get_registry()
    lines = []
    for ref in suite.datasets:
        declare = getattr(reg.get("dataset", ref.name).factory, "declare", None)
        if declare is None or ref.params.get("fetch"):
            continue
        decl = declare(reg.config_of("dataset", ref.name, ref.params))
        if complete_format(decl) is not None:
            continue
        looked = "; ".join(
            f"{folder_of(f)} ({f.name}, lacks {', '.join(missing_files(f)[:3])}"
            + (" ..." if len(missing_files(f)) > 3 else "")
            + ")"
            for f in decl.formats
        )
        where = "params.path" if ref.params.get("path") else f"MFM_BENCH_DATA={data_home()}"
        line = f"  {ref.label}: looked in {looked} [from {where}]; get it with `mfm-bench fetch {ref.name}`"
        lines.append(line + _subset_hint(reg, ref, decl))
    return lines


def _subset_hint(reg: Any, ref: Any, decl: Any) -> str:
    """When the files on disk serve some of the modalities asked for (all of them by default), those and the
    suite line that runs on them, else ``""``. Each is checked: declared with it alone, and with the subset,
    some format's files are all present."""
    if "modalities" not in ref.params:  # the plugin takes no modality subset
        return ""
    names = _asked(reg, ref, decl)
    usable = [m for m in names if _complete(reg, ref, [m]) is not None]
    ready = _complete(reg, ref, usable) if usable and len(usable) < len(names) else None
    if ready is None:
        return ""
    import yaml

    params = {**_given(reg, ref), "modalities": usable}
    item = {"name": ref.name, **({"label": ref.label} if ref.label != ref.name else {}), "params": params}
    entry = yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=10**6).strip()
    lacking = [m for m in names if m not in usable]
    return (
        f"\n    {ready.folder} has every file of {', '.join(usable)} but not of {', '.join(lacking)}: to run on those, "
        f"write the suite's entry as\n      - {entry}"
    )


def _asked(reg: Any, ref: Any, decl: Any) -> list[str]:
    """The modalities ``ref`` asks for: its ``modalities`` param, else the plugin's (``modality_names``), else
    the file roles the plugin takes as modality names."""
    if ref.params.get("modalities"):
        return list(ref.params["modalities"])
    factory = reg.get("dataset", ref.name).factory
    try:
        names = factory.modality_names(reg.config_of("dataset", ref.name, ref.params))
    except (AttributeError, ValueError, TypeError):
        names = None
    if names:
        return list(names)
    roles = dict.fromkeys(f.role for fmt in decl.formats for f in fmt.files)
    return [r for r in roles if _is_modality(reg, ref, r)]


def _complete(reg: Any, ref: Any, modalities: list[str]) -> Any:
    """The first format whose files are all present when ``ref`` asks for ``modalities`` (None: none is)."""
    from .data.fetch import complete_format

    try:
        return complete_format(_declare(reg, ref, {"modalities": modalities}))
    except (ValueError, TypeError):
        return None


def _declare(reg: Any, ref: Any, params: dict) -> Any:
    factory = reg.get("dataset", ref.name).factory
    return factory.declare(reg.config_of("dataset", ref.name, {**ref.params, **params}))


def _is_modality(reg: Any, ref: Any, role: str) -> bool:
    """Whether the plugin takes ``role`` as a modality name (``labels`` and ``words`` files are not)."""
    try:
        reg.config_of("dataset", ref.name, {**ref.params, "modalities": [role]})
    except (ValueError, TypeError):
        return False
    return True


def _given(reg: Any, ref: Any) -> dict:
    """The params of ``ref`` that differ from the plugin's defaults (what the suite wrote)."""
    try:
        defaults = reg.resolve("dataset", ref.name, {})
    except (ValueError, TypeError):  # a plugin with required params: keep them all
        defaults = {}
    return {k: v for k, v in ref.params.items() if k != "modalities" and defaults.get(k, object()) != v}


def home_note(suite: Any, registry: Any = None) -> str:
    """A line saying why the data home holds none of the suite's format folders, when a reason shows
    (:func:`mfm_bench.data.paths.home_problem`), else ``""``."""
    from pathlib import Path

    from .data.paths import data_home, home_problem
    from .registry import get_registry

    reg = registry or get_registry()
    folders = set()
    for ref in suite.datasets:
        declare = getattr(reg.get("dataset", ref.name).factory, "declare", None)
        if declare is None or ref.params.get("path"):
            continue
        decl = declare(reg.config_of("dataset", ref.name, ref.params))
        folders |= {f.folder for f in decl.formats if not Path(f.folder).is_absolute()}
    problem = home_problem(data_home(), sorted(folders)) if folders else None
    return f"\nnote: {problem}" if problem else ""


def check_data(suite: Any, registry: Any = None) -> None:
    """Raise :class:`SuiteDataMissingError` when any dataset of ``suite`` lacks its files (see module docstring)."""
    lines = missing_datasets(suite, registry)
    if lines:
        raise SuiteDataMissingError(
            f"{len(lines)} dataset(s) of {suite.path} have no data on disk; nothing was run:\n"
            + "\n".join(lines)
            + "\nor set MFM_BENCH_DATA to the folder that holds them, or add `fetch: true` to the suite"
            + home_note(suite, registry)
        )
