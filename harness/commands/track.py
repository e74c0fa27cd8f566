"""``mfm-bench track``: send the runs of an output folder to trackers (TensorBoard, MLflow) after the fact."""

from __future__ import annotations

import argparse

HELP = "send an output folder's runs to trackers: runs finished before the trackers were on, merged shards"
DESCRIPTION = """\
Send every run of output folder OUT that ended (finished or failed) to the trackers named with --to, as they would
have heard it while training: its configuration, each epoch's losses (from runs/<id>/history.json), its test metrics
and status. For runs that finished before `trackers:` was added to the suite (--resume does not train them again,
so the trackers never heard them) and for a folder made by `mfm-bench merge` (each shard tracked into its own
folder). The trackers write where they do during a run: OUT/tensorboard/<run id>/, OUT/mlruns/.

The built-in trackers replace a run's earlier record (TensorBoard's event files of that run, the MLflow run tagged
with its id), so a run sent twice is held once. A third-party tracker implements the hooks in its own package and
hears every run sent, whatever --to names."""
EPILOG = """\
examples:
  mfm-bench track runs/quickstart --to mlflow            then: mlflow ui --backend-store-uri runs/quickstart/mlruns
  mfm-bench track runs/merged --to tensorboard,mlflow    then: tensorboard --logdir runs/merged/tensorboard
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder", metavar="OUT", help="output folder of `mfm-bench run` or `mfm-bench merge` (holds results.sqlite)"
    )
    p.add_argument(
        "--to",
        required=True,
        metavar="NAMES",
        help="comma-separated built-in trackers: tensorboard, mlflow (pip install -e '.[trackers]')",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from mfm_bench.errors import MfmBenchError
    from mfm_bench.tracking import BUILTIN_TRACKERS, TrackerWarning, replay

    names = [n.strip() for n in args.to.split(",") if n.strip()]
    unknown = [n for n in names if n not in BUILTIN_TRACKERS]
    if unknown or not names:
        raise MfmBenchError(
            f"--to {args.to!r}: {'unknown tracker ' + ', '.join(map(repr, unknown)) if unknown else 'no tracker'}; "
            f"name built-in trackers: {', '.join(BUILTIN_TRACKERS)} (a third-party tracker hears every run sent "
            "and needs no name)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = replay(args.folder, names, progress=not args.no_progress)
    failed = [w for w in caught if issubclass(w.category, TrackerWarning)]
    for w in caught:
        if w not in failed:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for w in failed:  # during a suite a tracker's failure must not stop the runs; here it is the whole job
        print(f"error: {w.message.failure}", file=sys.stderr)
    skipped = f"; {counts['skipped']} run(s) that did not end left out" if counts["skipped"] else ""
    if failed:
        print(f"{counts['sent']} run(s) read, not all of them tracked (above){skipped}", file=sys.stderr)
        return 1
    print(f"{counts['sent']} run(s) sent to {', '.join(names)}{skipped}")
    return 0
