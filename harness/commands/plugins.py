"""``mfm-bench plugins``: every registered plugin with the package and version that provides it."""

from __future__ import annotations

import argparse

HELP = "list every encoder, fusion, dataset, model and plugin command with its package and version"
DESCRIPTION = (
    HELP
    + """.

Plugins are found through the `mfm_bench` entry-point group, built-ins and third-party packages alike.
Set MFM_BENCH_DISABLE_PLUGINS=name to skip a plugin, MFM_BENCH_LOAD_PLUGINS=a,b to load only those."""
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", choices=["encoder", "fusion", "dataset", "model", "command"], help="only this kind")
    p.add_argument(
        "--params",
        action="store_true",
        help="also list each plugin's parameters with defaults and help, and check its config and factory references",
    )


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from mfm_bench.config import describe_config
    from mfm_bench.registry import KINDS, PluginError, get_registry

    reg = get_registry()
    rows = []
    for kind in KINDS:
        if args.kind and kind != args.kind:
            continue
        for name in reg.names(kind):
            e = reg.entries[kind][name]
            rows.append((kind, name, e.package, e.version, e.help))
    if args.kind in (None, "command"):
        rows += [("command", c.name, c.package, c.version, c.help) for _, c in sorted(reg.commands.items())]
    print(tabulate(rows, headers=["kind", "name", "package", "version", "description"], tablefmt="simple"))
    broken = []  # a plugin whose config or factory cannot be loaded: reported after the others, exit status 1
    if args.params:
        for kind in KINDS:
            if args.kind and kind != args.kind:
                continue
            for name in reg.names(kind):
                try:
                    reg.entries[kind][name].check_factory()  # a wrong "module:attr", found without importing it
                except PluginError as e:
                    print(f"\n{kind} {name}: its factory cannot be found, see the error below")
                    broken.append(str(e))
                try:
                    cfg = reg.entries[kind][name].config
                except PluginError as e:
                    print(f"\n{kind} {name}: its config is broken, see the error below")
                    broken.append(str(e))
                    continue
                if cfg is None:
                    continue
                print(f"\n{kind} {name}:")
                print(tabulate(describe_config(cfg), headers=["param", "type", "default", "help"], tablefmt="simple"))
    for err in reg.errors:
        if getattr(args, "debug", False) and err.traceback:
            print("\n" + err.traceback.rstrip())
        print(
            f"\nerror: plugin {err.plugin!r} from package {err.package} failed to load: {err.error}\n"
            f"  (the other plugins work; disable it with MFM_BENCH_DISABLE_PLUGINS={err.plugin})"
        )
    for message in broken:
        print(f"\nerror: {message}")
    return 1 if reg.errors or broken else 0
