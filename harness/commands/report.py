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

    from mfm_bench.errors import StorageError
    from mfm_bench.leaderboard import no_store
    from mfm_bench.report import write_report
    from mfm_bench.results import DB_NAME, writable

    out = Path(args.out)
    if not (out / DB_NAME).exists():
        raise no_store(args.out)
    if not writable(out, out):
        raise StorageError(
            f"the output folder {out} cannot be written (read-only, or not yours), so report.html cannot be written "
            f"there; copy it (cp -r {out} COPY) and run `mfm-bench report COPY`, or make it writable"
        )
    print(f"report: {write_report(args.out)}")
    return 0
