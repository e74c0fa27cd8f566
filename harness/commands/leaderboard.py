"""``mfm-bench leaderboard``: (re)write the leaderboard of an output folder from its result store."""

from __future__ import annotations

import argparse

HELP = "rewrite an output folder's leaderboard (every format its suite asked for) from its results"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="output folder of `mfm-bench run` (holds results.sqlite)")
    from mfm_bench.render import DEFAULT_FORMATS, FORMATS

    p.add_argument(
        "--format",
        action="append",
        choices=FORMATS,
        help="write these formats (repeatable; default: the formats the suite asked for, else "
        f"{', '.join(DEFAULT_FORMATS)}); every leaderboard file already in FOLDER is rewritten too, from the same "
        "store, so none is left out of date; html adds charts",
    )
    p.add_argument(
        "--reference",
        metavar="LABEL",
        default=None,
        help="compare every model with this one, paired over seeds (default: the suite's report.reference)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the Markdown table")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from mfm_bench.leaderboard import already_there, board, collect, no_store, write_leaderboard
    from mfm_bench.render import markdown
    from mfm_bench.results import DB_NAME, ResultStore, writable

    if args.reference is not None:
        _check_reference(args.folder, args.reference)
    folder = Path(args.folder)
    if (folder / DB_NAME).exists() and not writable(folder, folder / DB_NAME):
        # a read-only folder (an archive, a colleague's results): the table still, no file written
        with ResultStore(folder, readonly=True) as store:
            data = collect(store)
            reference = args.reference if args.reference is not None else store.get_meta("reference")
        if not args.quiet:
            print(markdown(board(data, reference)))
        print(
            f"{folder} cannot be written (read-only, or not yours), so no leaderboard file was written; copy it "
            f"(cp -r {folder} COPY) and run `mfm-bench leaderboard COPY` to write them",
            file=sys.stderr,
        )
        return 0
    if not folder.is_dir() or not (folder / DB_NAME).exists():
        raise no_store(folder)
    there = already_there(folder) if args.format else []
    written = write_leaderboard(args.folder, args.format, reference=args.reference)
    if "markdown" in written and not args.quiet:
        print(written["markdown"].read_text())
    for fmt, path in written.items():
        extra = args.format and fmt not in args.format and fmt in there
        print(f"{fmt}: {path}" + (" (already in the folder: rewritten so it matches the store)" if extra else ""))
    from mfm_bench.report import refresh_report

    report = refresh_report(folder, written)  # never left showing older numbers than the tables
    if report is not None:
        print(f"report: {report}")
    return 0


def _check_reference(folder: str, reference: str) -> None:
    """--reference names the label of a model with finished runs in FOLDER (a typo would drop the paired table)."""
    from pathlib import Path

    from mfm_bench.errors import MfmBenchError
    from mfm_bench.leaderboard import no_store
    from mfm_bench.results import DB_NAME, ResultStore

    if not (Path(folder) / DB_NAME).exists():
        raise no_store(folder)
    with ResultStore(folder, readonly=True) as store:
        labels = sorted({r["label"] for r in store.runs("finished")})
    if reference not in labels:
        raise MfmBenchError(
            f"--reference {reference!r} is not a model with finished runs in {folder}; "
            f"models: {', '.join(labels) or 'none'} (the label column of the leaderboard)"
        )
