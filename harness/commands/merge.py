"""``mfm-bench merge``: combine the output folders of shards into one, then write its leaderboard."""

from __future__ import annotations

import argparse

HELP = "merge the output folders of `run --shard K/N` into one folder and write its leaderboard"
DESCRIPTION = """Merge the result stores (and run folders) of several output folders into OUT. Run ids are content
hashes: the same id in two folders is kept once; different results for one id are an error naming both folders.
Every folder is checked before OUT is written: a refused merge leaves OUT as it was. The leaderboard of the merged
folder equals that of one unsharded run, rows in the same order.

A finished run wins over an interrupted or failed attempt of the same id, so a shard can be merged before it is
done: finish it later with `mfm-bench run SUITE --out SHARD_DIR --resume --shard K/N` and merge it again, or run
`mfm-bench run SUITE --out OUT --resume` on the merged folder, which runs only what no shard finished. OUT may
already hold results (an earlier merge, or a run of the same suite): what is there is kept."""
EPILOG = """examples (Slurm array job, docs/scaling.md):
  mfm-bench run suites/sentiment.yaml --shard $SLURM_ARRAY_TASK_ID/4 --out runs/s/shard-$SLURM_ARRAY_TASK_ID
  mfm-bench merge runs/sentiment runs/s/shard-*
  mfm-bench track runs/sentiment --to mlflow         the merged runs in one MLflow store (each shard tracked its own)
"""


def formats_arg(text: str) -> list[str]:
    """``--formats markdown,csv``, checked when the command line is read: a typo refuses the merge before OUT is
    written."""
    from mfm_bench.render import FORMATS

    formats = [f.strip() for f in text.split(",")]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown leaderboard format {bad[0]!r} in {text!r}; give a comma-separated list of {', '.join(FORMATS)}"
        )
    return formats


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT", help="the merged output folder (created, or added to)")
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="output folders to merge")
    p.add_argument(
        "--formats",
        type=formats_arg,
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
    written = write_leaderboard(args.out, args.formats)
    print(
        f"merged {len(args.shards)} folder(s) into {args.out}: {counts['added']} run(s) added, "
        f"{counts['same']} already there, {counts['replaced']} unfinished replaced, "
        f"{counts['evaluations']} re-evaluation(s) added"
        + (
            f"; {counts['unfinished']} run(s) not finished (finish their shard with --resume, then merge it again)"
            if counts["unfinished"]
            else ""
        )
    )
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    if "html" in written:  # the full report goes with the HTML leaderboard, as after `mfm-bench run`
        from mfm_bench.report import write_report

        print(f"report: {write_report(args.out)}")
    return 0
