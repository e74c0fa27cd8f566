"""``mfm-bench datasets``: every dataset plugin, where it looks for data and whether the data are there."""

from __future__ import annotations

HELP = "list dataset plugins, where each looks for data and whether it is present"
EPILOG = """\
examples:
  mfm-bench datasets                        where each dataset looks, per format, and what is missing
  MFM_BENCH_DATA=../shared/data mfm-bench datasets
"""


def add_arguments(parser) -> None:
    parser.add_argument("--missing", action="store_true", help="list the missing files too")


def run(args) -> int:
    from tabulate import tabulate

    from mfm_bench.data.paths import cache_home, data_home
    from mfm_bench.registry import get_registry

    reg = get_registry()
    rows = []
    for name in reg.names("dataset"):
        entry = reg.get("dataset", name)
        factory = entry.factory
        presence = getattr(factory, "presence", None)
        if presence is None:
            rows.append([name, "-", "(generated, always present)", "yes", ""])
            continue
        for r in presence():
            status = "yes" if not r["missing"] else ("partial" if len(r["missing"]) < _n_needed(factory, r) else "no")
            miss = ", ".join(r["missing"]) if args.missing else (f"{len(r['missing'])} file{'s' if len(r['missing']) > 1 else ''}" if r["missing"] else "")
            rows.append([name, r["format"], r["folder"], status, miss])
    print(f"data home: {data_home()}   prepared cache: {cache_home()}")
    print(tabulate(rows, headers=["dataset", "format", "looks in", "present", "missing"]))
    print("\nGet data with `mfm-bench fetch DATASET`; a partial folder works for the modalities whose files it has.")
    return 0


def _n_needed(factory, row) -> int:
    from pathlib import Path

    obj = factory.__new__(factory)
    obj.cfg = factory.default_config()
    return len(obj.files_for(row["format"], list(factory.ALL_MODALITIES), Path(row["folder"])))
