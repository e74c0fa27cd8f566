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

    from mfm_bench.leaderboard import no_store
    from mfm_bench.report import write_report
    from mfm_bench.results import DB_NAME

    if not (Path(args.out) / DB_NAME).exists():
        raise no_store(args.out)
    print(f"report: {write_report(args.out)}")
    return 0
