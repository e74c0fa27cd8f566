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
    """When the files on disk serve a subset of the modalities (every missing file is one modality's), the
    subset and the suite line that runs on it, else ``""``. The subset is checked: declared with it, some
    format's files are all present."""
    from .data.fetch import complete_format, missing_files

    if "modalities" not in ref.params:  # the plugin takes no modality subset
        return ""
    asked = ref.params.get("modalities")
    for fmt in decl.formats:
        gone = set(missing_files(fmt))
        roles = list(dict.fromkeys(f.role for f in fmt.files))
        lacking = [r for r in roles if any(f.name in gone for f in fmt.files if f.role == r)]
        have = [r for r in roles if r not in lacking and (asked is None or r in asked)]
        if not have or not lacking:
            continue
        subset = [m for m in have if _is_modality(reg, ref, m)]
        params = {**_given(reg, ref), "modalities": subset}
        try:
            if not subset or complete_format(_declare(reg, ref, params)) is None:
                continue
        except (ValueError, TypeError):
            continue
        import yaml

        item = {"name": ref.name, **({"label": ref.label} if ref.label != ref.name else {}), "params": params}
        entry = yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=10**6).strip()
        return (
            f"\n    {fmt.folder} has the files of {', '.join(subset)} only (it lacks {', '.join(lacking)}): to run on "
            f"those, write the suite's entry as\n      - {entry}"
        )
    return ""


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
