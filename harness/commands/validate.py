"""``mfm-bench validate``: check suites without training."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "check suite files (keys, types, plugin names and params, files) without training"
EPILOG = """examples:
  mfm-bench validate suites/quickstart.yaml
  mfm-bench validate suites/*.yaml

exit status: 0 when every suite is valid; 1 when one or more are not (each gets one "error: FILE:LINE: ..."
line, and the others are still checked); 2 for a usage error. `mfm-bench run` refuses the same suites with exit 2,
except a dataset plugin without describe(cfg), which only validate refuses (run needs only its spec and splits).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suites", nargs="+", help="suite YAML files")


def run(args: argparse.Namespace) -> int:
    from mfm_bench.errors import MfmBenchError
    from mfm_bench.runner import expand
    from mfm_bench.suite import load_suite

    bad = 0
    for path in args.suites:
        try:
            suite = load_suite(path, require_describe=True)
        except MfmBenchError as e:  # each file gets its one line; the others are still checked
            print(f"error: {e}", file=sys.stderr)
            bad += 1
            continue
        n = len(expand(suite))
        print(
            f"{path}: ok ({len(suite.datasets)} dataset(s) x {len(suite.models)} model(s) x {len(suite.seeds)} seed(s)"
            f"{_runs(suite, n)}, {len(suite.conditions)} condition(s) each)"
        )
        for label, spec in suite.searches.items():
            print(
                f"  search {label}: {spec.n_trials} trial(s) per dataset ({spec.sampler}, {spec.metric} on "
                f"{'test: test-oracle' if spec.selection == 'test-oracle' else 'validation'}"
                f"{f', {spec.pruner.kind} pruner' if spec.pruner is not None else ''}), then "
                f"{len(suite.seeds)} seed(s) of the chosen configuration"
            )
    return 1 if bad else 0


def _runs(suite: Any, n: int) -> str:
    """What the suite runs: " = 6 runs", or with searched models (each trained by its search, outside the grid)
    ": 2 grid run(s) + a search of 8 trials"."""
    if not suite.searches:
        return f" = {n} runs"
    count = len(suite.datasets) * len(suite.searches)  # one search per dataset and searched model
    trials = len(suite.datasets) * sum(spec.n_trials for spec in suite.searches.values())
    searches = f"a search of {trials} trials" if count == 1 else f"{count} searches of {trials} trials in all"
    return f": {n} grid run(s) + {searches}"
