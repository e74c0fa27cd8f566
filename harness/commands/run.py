"""``mfm-bench run``: train and evaluate every run of a suite, then write and print its leaderboard."""

from __future__ import annotations

import argparse
import sys

from mfm_bench.config import device_arg

HELP = "train and evaluate a suite (dataset x model x seed), record results, print the leaderboard"
DESCRIPTION = """Train and evaluate every run of a suite: the grid dataset x model x seed, each evaluated under
every condition of the suite (clean, missing modality, noise). Each run has a stable id (a hash of its fully
resolved config); results go to a SQLite store in the output folder, then leaderboard.{md,csv,json} are written.
A run that fails is recorded with its error and the suite goes on."""
EPILOG = """examples:
  mfm-bench run suites/quickstart.yaml
  mfm-bench run suites/quickstart.yaml --out runs/qs --seeds 0,1,2 --device cpu
  mfm-bench run suites/quickstart.yaml --out runs/qs --resume     # after Ctrl-C: only the unfinished runs
"""


def seeds_arg(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="suite YAML file (see docs/suites.md)")
    p.add_argument("--out", help="output folder (default: runs/<suite name>)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="skip runs already finished in --out, run the rest")
    g.add_argument("--overwrite", action="store_true", help="run every run again, replacing earlier results")
    p.add_argument("--device", type=device_arg, metavar="DEVICE",
                   help="override the suite's train.device: auto, cpu, cuda or cuda:N")
    p.add_argument("--seeds", type=seeds_arg, help="override the suite's seeds, e.g. 0,1,2")
    p.add_argument("--threads", type=int, help="CPU threads for torch (override the suite's train.threads; 0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from mfm_bench.leaderboard import write_leaderboard
    from mfm_bench.runner import run_suite
    from mfm_bench.suite import load_suite

    suite = load_suite(args.suite)
    out = Path(args.out or Path("runs") / suite.name)
    t0 = time.perf_counter()
    try:
        counts = run_suite(suite, out, resume=args.resume, overwrite=args.overwrite, seeds=args.seeds,
                           device=args.device, progress=not args.no_progress, threads=args.threads)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are kept in {out}; continue with\n"
              f"  mfm-bench run {args.suite} --out {out} --resume", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    written = write_leaderboard(out, suite.formats, reference=suite.reference)
    if "markdown" in written:
        print(written["markdown"].read_text())
    print(f"{counts['finished']} run(s) finished, {counts['failed']} failed, {counts['skipped']} skipped "
          f"in {wall:.1f} s")
    print(f"results: {out / 'results.sqlite'}")
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    return 1 if counts["failed"] else 0
