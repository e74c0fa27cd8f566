"""``mfm-bench compare``: compare two output folders and fail when a model got worse (a CI regression gate)."""

from __future__ import annotations

import argparse

from mfm_bench.config import bounded_arg

HELP = "compare two output folders per dataset/model/condition/metric; exit 1 on a regression (CI gate)"
DESCRIPTION = """Compare BASE and NEW (output folders of `mfm-bench run`, or their results.sqlite) per (dataset, model,
condition, metric): the mean of each side over the seeds both have (column "paired seeds"), the difference, a
paired t-test across those same seeds (scipy.stats.ttest_rel; the exact sign test when every seed moved by the same
amount) and the training-throughput ratio. Seeds only one side has are listed under the table and left out of the
means and the test; where the sides share no seed, the row compares each side's own seeds, unpaired, with no test,
and says so. Exit status: 0 when the gate passes, 1 when a metric got
worse beyond --max-drop, significantly worse at --alpha, or throughput fell by more than --max-slowdown, or when a
run that finished in BASE failed or did not finish in NEW, 2 when the inputs cannot be compared (it says what did
not match). docs/ci.md has a CI recipe."""
EPILOG = """examples:
  mfm-bench compare runs/main runs/change
  mfm-bench compare runs/main runs/change --max-drop mae=0.02,corr=0.01 --alpha 0.05 --max-slowdown 0.3 --format md
"""


def drops_arg(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip() or out.get(name.strip(), -1) < 0:
            raise argparse.ArgumentTypeError(
                f"--max-drop takes METRIC=AMOUNT[,METRIC=AMOUNT], amounts >= 0, "
                f"e.g. acc2_non0=0.01,mae=0.02; got {part!r}"
            )
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", help="the reference: an output folder or its results.sqlite")
    p.add_argument("new", help="the candidate: an output folder or its results.sqlite")
    p.add_argument(
        "--max-drop",
        type=drops_arg,
        default={},
        metavar="M=X,...",
        help="fail when METRIC got worse by more than X (in its direction), e.g. acc2_non0=0.01,mae=0.02",
    )
    p.add_argument(
        "--alpha",
        type=bounded_arg(float, 0, 1, "a number in [0, 1]"),
        help="fail when a task metric is worse with paired-test p < ALPHA",
    )
    p.add_argument(
        "--max-slowdown",
        type=bounded_arg(float, 0, 1, "a number in [0, 1]"),
        metavar="FRACTION",
        help="fail when training throughput fell by more than FRACTION (0.3: to under 70%%)",
    )
    p.add_argument("--format", choices=["text", "md"], default="text", help="md: a pull-request comment")
    p.add_argument("--failures-only", action="store_true", help="print only the rows that fail the gate")


def run(args: argparse.Namespace) -> int:
    from mfm_bench.compare import (
        compare,
        gate,
        load,
        one_sided,
        other_origins,
        table,
        unfinished_in_new,
        unpaired_seeds,
    )

    sides = load(args.base), load(args.new)  # each store read once: rows, run statuses, origins
    rows = compare(args.base, args.new, sides)
    failed = gate(rows, args.max_drop, args.alpha, args.max_slowdown)
    lost = unfinished_in_new(*sides)
    unknown = set(args.max_drop) - {r.metric for r in rows}
    if unknown:
        from mfm_bench.compare import CompareInputError

        metrics = {side: {k[3] for k in got} for side, got in zip(("BASE", "NEW"), sides)}
        one_side = [f"{m} (only in {side})" for m in sorted(unknown) for side, got in metrics.items() if m in got]
        neither = sorted(m for m in unknown if not any(m in got for got in metrics.values()))
        parts = [f"neither side measured: {', '.join(neither)}"] if neither else []
        if one_side:
            parts.append(f"measured on one side only: {', '.join(one_side)}")
        if lost:
            parts.append(f"runs that finished in BASE did not finish in NEW: {'; '.join(lost)}")
        raise CompareInputError(
            f"--max-drop cannot compare: {'; '.join(parts)}; measured by both: "
            f"{', '.join(sorted({r.metric for r in rows}))}"
        )
    shown = failed if args.failures_only else rows
    if shown:
        print(table(shown, args.format))
    unpaired = unpaired_seeds(rows if not args.failures_only else shown)
    if unpaired:
        print(f"\nseeds only one side has, not paired ({len(unpaired)}):")
        print("\n".join(f"- {line}" for line in unpaired))
    skipped = one_sided(*sides)
    if skipped:
        print(f"\nnot compared, measured on one side only ({len(skipped)}):")
        print("\n".join(f"- {line}" for line in skipped))
    if lost:
        print(f"\n{len(lost)} run(s) finished in BASE but not in NEW (no metrics to compare):")
        print("\n".join(f"- {line}" for line in lost))
    if origins := other_origins(*sides):
        print("\nnote: BASE and NEW ran on different setups; a difference can be rounding, not the change:")
        print("\n".join(f"- {line}" for line in origins))
    verdict = (
        f"{len(failed) + len(lost)} regression(s): NEW is worse than BASE"
        + (f" ({len(lost)} of them run(s) that did not finish)" if lost else "")
        if failed or lost
        else f"no regression in {len(rows)} comparison(s)"
    )
    print(f"\n{'**' + verdict + '**' if args.format == 'md' else verdict}")
    return 1 if failed or lost else 0
