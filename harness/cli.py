"""``mfm-bench``: the command line. Each subcommand lives in ``mfm_bench.commands.<name>`` and defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``. Nothing here imports torch, so
``mfm-bench --help`` and ``mfm-bench plugins`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, commands

EPILOG = """\
examples:
  mfm-bench run suites/quickstart.yaml            train and evaluate a suite, print its leaderboard
  mfm-bench run suites/quickstart.yaml --resume   carry on an interrupted suite, skipping finished runs
  mfm-bench validate suites/sentiment.yaml        check a suite without training
  mfm-bench plugins                               list encoders, fusions, datasets and models
  mfm-bench leaderboard runs/quickstart           (re)write the leaderboard of an output folder

Run `mfm-bench COMMAND --help` for the options of one command. Docs: docs/suites.md, docs/plugins.md.
"""


def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfm-bench",
        description="Benchmark harness for multimodal representation learning around the Multimodal Factorization Model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mfm-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _command_modules():
        mod = importlib.import_module(f"mfm_bench.commands.{name}")
        p = sub.add_parser(
            getattr(mod, "NAME", name), help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
            epilog=getattr(mod, "EPILOG", None), formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
