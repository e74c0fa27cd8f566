"""``mfm-bench report``: write the self-contained report.html of an output folder."""

from __future__ import annotations

import argparse

HELP = "write report.html: sortable tables, robustness curves, one section per run (config, curves, environment)"
EPILOG = """examples:
  mfm-bench report runs/quickstart
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="an output folder of `mfm-bench run`")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mfm_bench.errors import MissingFileError
    from mfm_bench.report import write_report
    from mfm_bench.results import DB_NAME

    if not (Path(args.out) / DB_NAME).exists():
        raise MissingFileError(f"{args.out} holds no {DB_NAME}; run a suite into it first")
    print(f"report: {write_report(args.out)}")
    return 0
