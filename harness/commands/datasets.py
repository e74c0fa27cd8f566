"""``mfm-bench datasets``: every dataset plugin, where it looks for data and which declared files are missing."""

from __future__ import annotations

from pathlib import Path

HELP = "list dataset plugins, where each looks for data and which of its files are missing"
EPILOG = """\
examples:
  mfm-bench datasets                        where each dataset looks, per format, and the files it lacks
  mfm-bench datasets --missing              only the formats that lack files
  MFM_BENCH_DATA=../shared/data mfm-bench datasets
"""


def add_arguments(parser) -> None:
    parser.add_argument("--missing", action="store_true", help="show only the formats that lack files")


def rows_of(name: str, factory) -> list[list[str]]:
    """[dataset, format, folder, present, missing files] per declared format (default params)."""
    from mfm_bench.data.fetch import folder_of, missing_files
    from mfm_bench.registry import get_registry

    declare = getattr(factory, "declare", None)
    if declare is None:
        return [[name, "-", "(generated, always present)", "yes", ""]]
    if getattr(factory, "FETCH_ADVICE", ""):  # the user's own file, named by each suite's params.path
        return [[name, "-", "(your own file, at params.path)", "-", ""]]
    rows = []
    for fmt in declare(get_registry().config_of("dataset", name, {})).formats:
        missing = missing_files(fmt)
        status = "yes" if not missing else ("partial" if len(missing) < len(fmt.files) else "no")
        rows.append([name, fmt.name, str(folder_of(fmt)), status, ", ".join(missing)])
    return rows


def rows_relative(reg) -> list[tuple[str, str, str]]:
    """(dataset, format, folder relative to the data home) of every declared format under default params."""
    out = []
    for name in reg.names("dataset"):
        declare = getattr(reg.get("dataset", name).factory, "declare", None)
        if declare is None:
            continue
        for fmt in declare(reg.config_of("dataset", name, {})).formats:
            if not Path(fmt.folder).is_absolute():
                out.append((name, fmt.name, fmt.folder))
    return out


def run(args) -> int:
    from tabulate import tabulate

    from mfm_bench.data.paths import cache_home, data_home, home_problem
    from mfm_bench.registry import get_registry

    reg = get_registry()
    rows = [r for name in reg.names("dataset") for r in rows_of(name, reg.get("dataset", name).factory)]
    if args.missing:
        rows = [r for r in rows if r[4]]
    print(f"data home: {data_home()}   prepared cache: {cache_home()}")
    problem = home_problem(data_home(), sorted({r[2] for r in rows_relative(reg)}))
    if problem:
        print(f"note: {problem}")
    print(
        tabulate(rows, headers=["dataset", "format", "looks in", "present", "missing"], maxcolwidths=[None] * 4 + [60])
    )
    print("\nGet data with `mfm-bench fetch DATASET`; a partial folder works for the modalities whose files it has.")
    return 0
