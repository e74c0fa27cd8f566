"""``mfm-bench run``: train and evaluate every run of a suite, then write and print its leaderboard."""

from __future__ import annotations

import argparse
import sys

from mfm_bench.config import bounded_arg, device_arg

HELP = "train and evaluate a suite (dataset x model x seed), record results, print the leaderboard"
DESCRIPTION = """Train and evaluate every run of a suite: the grid dataset x model x seed, each evaluated under
every condition of the suite (clean, missing modality, noise). Each run has a stable id (a hash of its fully
resolved config); results go to a SQLite store in the output folder, then leaderboard.{md,csv,json} are written.
A run that fails (an error, a diverged training, non-finite metrics) is recorded with its reason and the suite goes
on. The output folder is locked while the suite runs, belongs to one suite and configuration, and --resume keeps
finished runs only when they ran with the same device, threads and deterministic setting (see docs/results.md);
with every run finished it runs nothing and rewrites the leaderboard. Ctrl-C or SIGTERM keeps the finished runs,
rewrites the leaderboard with them and prints the command that carries on (exit status 130, or 143 for SIGTERM).
A model with a search: block is tuned first (Optuna trials selected on validation, optionally pruned epoch by
epoch), then its chosen configuration runs on the suite's seeds; --resume keeps its finished trials, and with a
larger n_trials in the suite runs only the new ones (see docs/scaling.md)."""
EPILOG = """examples:
  mfm-bench run suites/quickstart.yaml
  mfm-bench run suites/quickstart.yaml --out runs/qs --seeds 0,1,2 --device cpu
  mfm-bench run suites/quickstart.yaml --out runs/qs --resume     # after Ctrl-C: only the unfinished runs
  mfm-bench run suites/quickstart.yaml --jobs 2                   # two worker processes (docs/scaling.md)
  mfm-bench run suites/quickstart.yaml --executor ray --ray-address auto
  mfm-bench run suites/quickstart.yaml --shard 2/4                # one slice of the grid; then mfm-bench merge
"""


def seeds_arg(text: str) -> list[int]:
    """``--seeds 0,1,2``: at least one seed, each from 0 to 2**63-1 (SQLite's integers), none twice."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds is empty; give at least one seed, e.g. --seeds 0,1,2")
    bad = [s for s in seeds if not 0 <= s <= 2**63 - 1]
    if bad:
        raise argparse.ArgumentTypeError(f"--seeds: {bad[0]} is out of range; seeds are integers from 0 to 2**63-1")
    twice = [s for i, s in enumerate(seeds) if s in seeds[:i]]
    if twice:
        raise argparse.ArgumentTypeError(f"--seeds lists {twice[0]} twice; list each seed once")
    return seeds


def shard_arg(text: str) -> tuple[int, int]:
    from mfm_bench.runner import parse_shard

    try:
        return parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def execution_of(suite: object, args: argparse.Namespace) -> object:
    """The suite's executor block with the command line's overrides."""
    import dataclasses

    over = {
        k: v for k, v in (("kind", args.executor), ("jobs", args.jobs), ("address", args.ray_address)) if v is not None
    }
    return dataclasses.replace(suite.executor, **over)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="suite YAML file (see docs/suites.md)")
    p.add_argument("--out", help="output folder (default: runs/<suite name>)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="skip runs already finished in --out, run the rest")
    g.add_argument("--overwrite", action="store_true", help="run every run again, replacing earlier results")
    p.add_argument(
        "--device",
        type=device_arg,
        metavar="DEVICE",
        help="override the suite's train.device: auto, cpu, cuda or cuda:N",
    )
    p.add_argument("--seeds", type=seeds_arg, help="override the suite's seeds, e.g. 0,1,2")
    p.add_argument(
        "--threads",
        type=bounded_arg(int, 0, None, "0 (auto, see docs/performance.md) or a positive integer"),
        help="CPU threads for torch (override the suite's train.threads; 0: auto, see docs/performance.md)",
    )
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="with --resume, keep finished runs made with other --threads/--device settings",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="torch's deterministic algorithms (slower on GPU; an op without one is an error); recorded",
    )
    p.add_argument(
        "--limit",
        type=bounded_arg(int, 1, None, "a positive number of samples"),
        metavar="N",
        help="smoke test: a seeded random N samples of each split (new run ids; the leaderboard says so, and a "
        "warning when N covers every split of a dataset)",
    )
    x = p.add_argument_group("execution (docs/scaling.md)")
    x.add_argument(
        "--jobs",
        type=bounded_arg(int, 1, None, "a positive number of worker processes"),
        metavar="N",
        help="train N runs at once in worker processes, torch threads split across them "
        "(override the suite's executor.jobs; per-epoch bars only with 1)",
    )
    x.add_argument("--executor", choices=["local", "ray"], help="where runs train (override the suite's executor.kind)")
    x.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (e.g. auto, ray://host:10001); default RAY_ADDRESS, else a local cluster",
    )
    x.add_argument(
        "--shard",
        type=shard_arg,
        metavar="K/N",
        help="run only the K-th of N deterministic slices of the grid (default --out: runs/<suite>-shard-K-of-N)",
    )


def same_execution(args: argparse.Namespace) -> str:
    """The options of this command, other than --out, --resume and --overwrite, to repeat in the resume command it
    prints after Ctrl-C: without them a --resume would run other runs (--seeds, --limit, --shard) or be refused as
    mixing settings (--threads, --device, --deterministic, and --jobs, which sets threads per run)."""
    import shlex

    given = (
        ("--seeds", ",".join(map(str, args.seeds)) if args.seeds else None),
        ("--limit", args.limit),
        ("--shard", "/".join(map(str, args.shard)) if args.shard else None),
        ("--jobs", args.jobs),
        ("--threads", args.threads),
        ("--device", args.device),
        ("--executor", args.executor),
        ("--ray-address", args.ray_address),
    )
    flags = (("--deterministic", args.deterministic), ("--allow-mixed", args.allow_mixed))
    line = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in given if value is not None)
    return line + "".join(f" {flag}" for flag, on in flags if on)


def _check_out(out: object) -> None:
    """An output folder that is a file, or that lies inside another output folder (``--out runs/qs/runs``, where
    that suite keeps its run folders), is refused before anything is written."""
    from pathlib import Path

    from mfm_bench.errors import MfmBenchError

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MfmBenchError(f"--out {out}: is a file, not a folder; give the folder the suite's results go to")
    for parent in out.resolve().parents:
        if (parent / "results.sqlite").is_file():
            raise MfmBenchError(
                f"--out {out}: is inside {parent}, the output folder of another run (it holds results.sqlite), "
                "whose results and run folders it would mix with its own; give a folder outside it"
            )


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from mfm_bench.runner import sigterm_as_interrupt
    from mfm_bench.suite import load_suite

    suite = load_suite(args.suite, device=args.device)  # --device replaces the suite's train.device
    shard = f"-shard-{args.shard[0]}-of-{args.shard[1]}" if args.shard else ""
    out = Path(args.out or Path("runs") / f"{suite.name}{shard}")
    _check_out(out)
    t0 = time.perf_counter()
    # SIGTERM (kill, timeout, a scheduler) is an interrupt from here on, as Ctrl-C, wherever it lands (checking
    # data, training, writing the leaderboard): the command cleans up and exits 143 (Ctrl-C: 130). The outer block
    # covers a second signal while the leaderboard of an interrupted suite is written
    with sigterm_as_interrupt():
        try:
            with sigterm_as_interrupt():
                counts = _run_suite(suite, out, args)
        except KeyboardInterrupt as e:
            _after_interrupt(suite, out, args)
            return getattr(e, "exit_code", 130)
        return _report(suite, out, counts, time.perf_counter() - t0)


def _run_suite(suite: object, out: object, args: argparse.Namespace) -> dict[str, int]:
    import sqlite3

    from mfm_bench.errors import MfmBenchError
    from mfm_bench.runner import run_suite

    try:
        return run_suite(
            suite,
            out,
            resume=args.resume,
            overwrite=args.overwrite,
            seeds=args.seeds,
            device=args.device,
            progress=not args.no_progress,
            threads=args.threads,
            allow_mixed=args.allow_mixed,
            deterministic=args.deterministic,
            limit=args.limit,
            execution=execution_of(suite, args),
            shard=args.shard,
        )
    except MfmBenchError:  # already one clear line (some are also OSErrors: missing files and data)
        raise
    except OSError as e:  # a full disk, a read-only or unwritable --out: the store keeps what was written
        from mfm_bench.errors import storage_error

        raise storage_error(e, f"the output folder {out}") from None
    except sqlite3.OperationalError as e:  # "database or disk is full"
        from mfm_bench.errors import StorageError

        raise StorageError(
            f"cannot write {out / 'results.sqlite'}: {e}; free some space and run again with --resume"
        ) from None


def _after_interrupt(suite: object, out: object, args: argparse.Namespace) -> None:
    """After Ctrl-C or SIGTERM: the leaderboard files of ``out`` rewritten from the store, so that the runs that
    finished are shown (the interrupted run is listed under "Runs not finished"), then the command that carries
    on. A leaderboard that cannot be written is one line: the runs are safe in the store either way."""
    import shlex
    import sqlite3

    from mfm_bench.errors import MfmBenchError
    from mfm_bench.results import DB_NAME

    if (out / DB_NAME).is_file():
        from mfm_bench.leaderboard import write_leaderboard
        from mfm_bench.results import ResultStore

        try:
            with ResultStore(out, readonly=True) as store:
                finished = len(store.runs("finished"))
                owner = (store.get_meta("suite") or {}).get("name")
            if owner == suite.name:  # not when stopped before the folder was claimed (it may be another suite's)
                written = write_leaderboard(out, reference=suite.reference)
                if "html" in suite.formats:  # the full report goes with the HTML leaderboard, as after a whole suite
                    from mfm_bench.report import write_report

                    written["report"] = write_report(out)
                shown = ", ".join(str(p) for p in written.values())
                print(f"\nleaderboard of the {finished} finished run(s), incomplete: {shown}", file=sys.stderr)
        except (MfmBenchError, OSError, sqlite3.Error) as e:
            print(f"\nthe leaderboard was not rewritten: {e}", file=sys.stderr)
    print(
        f"\ninterrupted: finished runs are kept in {out}; continue with\n"
        f"  mfm-bench run {shlex.quote(args.suite)} --out {shlex.quote(str(out))} --resume{same_execution(args)}",
        file=sys.stderr,
    )


def _report(suite: object, out: object, counts: dict[str, int], wall: float) -> int:
    """The leaderboard written and printed, then the counts and the files: the end of a suite that ran through."""
    from mfm_bench.leaderboard import write_leaderboard

    written = write_leaderboard(out, reference=suite.reference)  # the suite's formats, and those already there
    if "markdown" in written:
        print(written["markdown"].read_text())
    pruned = f" ({counts['pruned']} stopped early by a search's pruner)" if counts.get("pruned") else ""
    print(
        f"{counts['finished']} run(s) finished{pruned}, {counts['failed']} failed, {counts['skipped']} skipped "
        f"in {wall:.1f} s"
    )
    print(f"results: {out / 'results.sqlite'}")
    for fmt, path in written.items():
        print(f"{fmt}: {path}")
    if "html" in suite.formats:  # the full report goes with the HTML leaderboard
        from mfm_bench.report import write_report

        print(f"report: {write_report(out)}")
    return 1 if counts["failed"] else 0
