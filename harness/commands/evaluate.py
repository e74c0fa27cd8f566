"""``mfm-bench evaluate``: re-score saved models under conditions, old or new, without retraining."""

from __future__ import annotations

import argparse

from mfm_bench.config import device_arg

HELP = "re-score saved models under conditions (old or new) without retraining; per-sample predictions as Parquet"
DESCRIPTION = """Load the model.pt of every finished run of an output folder (or of one run folder, OUT/runs/<id>),
evaluate it under the given conditions (default: the run's own), and record the rows in the folder's store as a
re-evaluation with its own provenance. The runs' own metrics are never changed; the leaderboard shows re-evaluated
conditions the runs never measured, and is rewritten with report.html (when the folder has one). Per-sample
predictions (run, id, target, prediction, condition) go to OUT/evaluations/<evaluation id>.parquet.
docs/evaluation.md defines the conditions."""
EPILOG = """examples:
  mfm-bench evaluate runs/quickstart
  mfm-bench evaluate runs/quickstart --condition missing:text@0.5 --condition 'drop:visual:0.25'
  mfm-bench evaluate runs/quickstart/runs/0123456789abcdef --condition '{missing: {subsets: [text, audio]}}'
"""


def condition_arg(text: str) -> object:
    """A condition as a suite writes it: a string (``noise:audio:0.5``) or a YAML mapping."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"--condition {text!r} is neither a name nor YAML") from None
    return value if isinstance(value, dict) else text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", metavar="RUN_DIR_OR_OUT", help="an output folder of `mfm-bench run`, or one run folder in it"
    )
    p.add_argument(
        "--condition",
        action="append",
        type=condition_arg,
        metavar="COND",
        help="a condition (repeatable), e.g. missing:text@0.5, noise:audio:0.5, drop:visual:0.25, "
        "'{missing: {subsets: [text, audio]}}'; default: each run's own conditions",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "valid", "test"],
        help="split to score (default: test; the leaderboard shows test-split rows only)",
    )
    p.add_argument("--device", type=device_arg, default="cpu", metavar="DEVICE", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--no-leaderboard", action="store_true", help="do not rewrite the folder's leaderboard and report.html"
    )


def run(args: argparse.Namespace) -> int:
    from mfm_bench.errors import MfmBenchError
    from mfm_bench.evaluation import ConditionError, parse_conditions
    from mfm_bench.reevaluate import reevaluate

    if args.condition:
        try:
            parse_conditions(args.condition)
        except ConditionError as e:
            raise MfmBenchError(f"--condition number {e.index + 1}: {e.message}") from None
    result = reevaluate(args.path, args.condition, device=args.device, split=args.split)
    print(f"evaluation {result['evaluation']}: {result['rows']} metric row(s) recorded in {result['out']}")
    print(f"per-sample predictions: {result['predictions']}")
    if not args.no_leaderboard:
        from mfm_bench.leaderboard import write_leaderboard
        from mfm_bench.render import FILES

        formats = [f for f, name in FILES.items() if (result["out"] / name).exists()] or None
        from mfm_bench.report import refresh_report

        written = write_leaderboard(result["out"], formats)
        for fmt, path in written.items():
            print(f"{fmt}: {path}")
        report = refresh_report(result["out"], written)  # the report shows the re-evaluated conditions too
        if report is not None:
            print(f"report: {report}")
    return 0
