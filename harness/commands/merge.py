"""``mfm-bench merge``: combine the output folders of shards into one, then write its leaderboard."""

from __future__ import annotations

import argparse

HELP = "merge the output folders of `run --shard K/N` into one folder and write its leaderboard"
DESCRIPTION = """Merge the result stores (and run folders) of several output folders into OUT. Run ids are content
hashes: the same id in two folders is kept once; different results for one id are an error naming both folders.
Every folder is checked before OUT is written: a refused merge leaves OUT as it was. The leaderboard of the merged
folder equals that of one unsharded run, rows in the same order."""
EPILOG = """examples (Slurm array job, docs/scaling.md):
  mfm-bench run suites/sentiment.yaml --shard $SLURM_ARRAY_TASK_ID/4 --out runs/s/shard-$SLURM_ARRAY_TASK_ID
  mfm-bench merge runs/sentiment runs/s/shard-*
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="the merged output folder (created, or added to)")
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="output folders to merge")
    p.add_argument(
        "--formats",
        help="leaderboard formats, comma-separated: markdown, csv, json, html (default: the formats the shards' "
        "suite asked for in report.formats, plus every one already in OUT; html also writes report.html)",
    )


def run(args: argparse.Namespace) -> int:
    from mfm_bench.errors import MfmBenchError, storage_error
    from mfm_bench.leaderboard import write_leaderboard
    from mfm_bench.merge import merge

    try:
        counts = merge(args.out, args.shards)
    except MfmBenchError:  # already one clear line (some are also OSErrors)
        raise
    except OSError as e:  # a full disk, an unwritable OUT
        raise storage_error(e, f"the output folder {args.out}") from None
    formats = args.formats.split(",") if args.formats else None
    written = write_leaderboard(args.out, formats)
    print(
        f"merged {len(args.shards)} folder(s) into {args.out}: {counts['added']} run(s) added, "
        f"{counts['same']} already there, {counts['replaced']} unfinished replaced, "
        f"{counts['evaluations']} re-evaluation(s) added"
    )
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    if "html" in written:  # the full report goes with the HTML leaderboard, as after `mfm-bench run`
        from mfm_bench.report import write_report

        print(f"report: {write_report(args.out)}")
    return 0
