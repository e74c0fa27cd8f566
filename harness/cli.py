"""``mfm-bench``: the command line. Each built-in subcommand lives in ``mfm_bench.commands.<name>`` and defines
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``; plugins add commands of the same shape
through the ``register_commands`` hook. Nothing here imports torch, so ``mfm-bench --help`` and
``mfm-bench plugins`` start fast: a plugin command's module is imported only when that command is parsed.

Errors: an :class:`~mfm_bench.errors.MfmBenchError` is printed once as ``error: <message>`` and ``mfm-bench``
exits with its ``exit_code`` (2); ``--debug`` adds the traceback. Ctrl-C exits with 130, SIGTERM (in the commands
that handle it: run, align, prepare) with 143, the shell's 128 + signal number. Any other exception is a bug and
propagates.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import traceback
import warnings
from typing import Any

from . import __version__, commands
from .errors import DeprecatedParamWarning, MfmBenchError

EPILOG = """\
examples:
  mfm-bench run suites/quickstart.yaml            train and evaluate a suite, print its leaderboard
  mfm-bench run suites/quickstart.yaml --resume   carry on an interrupted suite, skipping finished runs
  mfm-bench validate suites/sentiment.yaml        check a suite without training
  mfm-bench plugins                               list encoders, fusions, datasets and models
  mfm-bench leaderboard runs/quickstart           (re)write the leaderboard of an output folder
  mfm-bench evaluate runs/quickstart --condition missing:text@0.5   re-score saved models, no retraining
  mfm-bench compare runs/main runs/change --max-drop mae=0.02       CI regression gate (exit 1 when worse)
  mfm-bench report runs/quickstart                report.html: sortable tables, robustness curves, every run
  mfm-bench track runs/quickstart --to mlflow     send its runs to MLflow (or tensorboard) after the fact

Run `mfm-bench COMMAND --help` for the options of one command. Docs: docs/suites.md, docs/plugins.md,
docs/evaluation.md, docs/ci.md.
"""


def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def _wanted_command(argv: list[str]) -> str | None:
    """The first positional argument (the command name), without parsing: only that command's module is imported."""
    return next((a for a in argv if not a.startswith("-")), None)


def _add_command(sub: Any, name: str, mod: Any, help: str | None = None) -> None:
    p = sub.add_parser(
        name,
        help=help or mod.HELP,
        description=getattr(mod, "DESCRIPTION", None) or help or mod.HELP,
        epilog=getattr(mod, "EPILOG", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mod.add_arguments(p)
    p.set_defaults(_run=mod.run)


def _add_plugin_commands(sub: Any, taken: set[str], wanted: str | None) -> None:
    """Plugin commands: listed with their one-line help; only the ``wanted`` one is imported and given options."""
    from .registry import get_registry

    for cmd in get_registry().commands.values():
        if cmd.name in taken:
            raise MfmBenchError(
                f"command {cmd.name!r} of {cmd.package} (plugin {cmd.plugin}) clashes with a "
                f"built-in command; disable it with MFM_BENCH_DISABLE_PLUGINS={cmd.plugin}"
            )
        if cmd.name == wanted:
            _add_command(sub, cmd.name, cmd.module, cmd.help)
        else:
            sub.add_parser(cmd.name, help=cmd.help, add_help=False)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``mfm-bench`` parser. ``argv`` only decides which plugin command (if any) gets its module imported."""
    parser = argparse.ArgumentParser(
        prog="mfm-bench",
        description=(
            "Benchmark harness for multimodal representation learning around the Multimodal Factorization Model."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mfm-bench {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = set()
    for name in _command_modules():
        mod = importlib.import_module(f"mfm_bench.commands.{name}")
        names.add(getattr(mod, "NAME", name))
        _add_command(sub, getattr(mod, "NAME", name), mod)
    _add_plugin_commands(sub, names, _wanted_command(argv or []))
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """The project's own warnings (a tracker that failed, a deprecated param, CSD metadata) as ``warning: ...``
    lines, as a command-line tool shows them: their text names the file, plugin or param and the fix, so Python's
    ``path:line: Category:`` prefix and the source line under it only told the user where inside mfm-bench the
    warning was raised. Other packages' warnings keep Python's format."""
    if getattr(category, "__module__", "").startswith("mfm_bench"):
        print(f"warning: {message}", file=file if file is not None else sys.stderr)
        return
    _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the program itself (the console script, python -m): its process ends after the command
        warnings.showwarning = _show_warning
        try:
            code = _main(sys.argv[1:])
            sys.stdout.flush()  # here, so that a reader who went away (| head) is caught below, not at exit
            return code
        except BrokenPipeError:
            # the reader of stdout closed it (mfm-bench leaderboard runs/x | head): nothing more can be shown, and a
            # traceback would only hide the output already read. stdout is pointed at /dev/null so the
            # interpreter's own flush at exit does not raise again (as the Python docs' signal notes advise)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 1
        finally:
            # the interpreter's shutdown collects garbage over every object torch's modules made (0.45 s of a
            # command's exit on the 2-core machine of docs/performance.md, 0.1 s with them frozen). atexit handlers
            # (the trackers') still run; every file the command wrote is closed by then
            import gc

            gc.freeze()
    return _main(list(argv))


def _main(argv: list[str]) -> int:
    command = _wanted_command(argv)
    debug = "--debug" in (argv[: argv.index(command)] if command else argv)  # a global flag, before the command
    warnings.filterwarnings("default", category=DeprecatedParamWarning)  # Python hides DeprecationWarnings
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if not getattr(args, "_run", None):
            parser.print_help()
            return 2
        return int(args._run(args) or 0)
    except MfmBenchError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:  # Ctrl-C: 130; SIGTERM, where a command turns it into an interrupt: 143
        print("interrupted", file=sys.stderr)
        return getattr(e, "exit_code", 130)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
